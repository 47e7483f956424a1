package inventory

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // site time zones validate even where the host has no zoneinfo

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/store"
)

// Site is a place devices are at: a campus, a plant, a hospital. Devices
// refer to a site by id (Location.Site); a site cannot be deleted while a
// device refers to it.
type Site struct {
	// ID is required and matches ^[a-z0-9][a-z0-9._-]{0,62}$.
	ID string `json:"id"`
	// Name is required, at most 128 characters.
	Name    string `json:"name"`
	Address string `json:"address"`
	// Lat is from -90 to 90 and Lon from -180 to 180, in degrees.
	Lat *float64 `json:"lat"`
	Lon *float64 `json:"lon"`
	// Timezone is an IANA time zone name ("Europe/Berlin"), or empty.
	Timezone string `json:"timezone"`
	// CreatedAt is kept by the Service and ignored on input.
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// maxAddressLen bounds a site's address and a group's description.
const maxAddressLen = 1024

// Validate reports whether s is acceptable input for CreateSite. Returns an
// Invalid *apperr.Error naming the field.
func (s Site) Validate() error {
	_, err := s.normalized()
	return err
}

func (s Site) normalized() (Site, error) {
	out := Site{ID: strings.TrimSpace(s.ID)}
	if msg := checkID(out.ID); msg != "" {
		return Site{}, apperr.InvalidField("id", "%s", msg)
	}
	var err error
	if out.Name, err = cleanText("name", s.Name, MaxNameLen); err != nil {
		return Site{}, err
	}
	if out.Name == "" {
		return Site{}, apperr.InvalidField("name", "is required")
	}
	if out.Address, err = cleanText("address", s.Address, maxAddressLen); err != nil {
		return Site{}, err
	}
	if out.Lat, err = checkCoordinate("lat", s.Lat, 90); err != nil {
		return Site{}, err
	}
	if out.Lon, err = checkCoordinate("lon", s.Lon, 180); err != nil {
		return Site{}, err
	}
	out.Timezone = strings.TrimSpace(s.Timezone)
	if out.Timezone != "" {
		if _, err := time.LoadLocation(out.Timezone); err != nil || out.Timezone == "Local" || len(out.Timezone) > 64 {
			return Site{}, apperr.InvalidField("timezone", "%s is not an IANA time zone name (e.g. Europe/Berlin)", quote(s.Timezone))
		}
	}
	return out, nil
}

const siteColumns = `id, name, address, lat, lon, timezone, created_at`

func scanSite(sc rowScanner) (Site, error) {
	var s Site
	var lat, lon sql.NullFloat64
	var created int64
	if err := sc.Scan(&s.ID, &s.Name, &s.Address, &lat, &lon, &s.Timezone, &created); err != nil {
		return Site{}, err
	}
	if lat.Valid {
		s.Lat = &lat.Float64
	}
	if lon.Valid {
		s.Lon = &lon.Float64
	}
	s.CreatedAt = store.Time(created)
	return s, nil
}

func nullFloat(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

// insertSite stores a new site and returns its creation event.
func (s *Service) insertSite(ctx context.Context, tx *store.Tx, site Site, now time.Time) (bus.Event, error) {
	_, err := tx.Exec(ctx, `INSERT INTO sites (id, name, address, lat, lon, timezone, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		site.ID, site.Name, site.Address, nullFloat(site.Lat), nullFloat(site.Lon), site.Timezone, store.Nanos(now), store.Nanos(now))
	if store.IsUniqueViolation(err) {
		return bus.Event{}, apperr.Errorf(apperr.Conflict, "site %s exists already", site.ID)
	}
	if err != nil {
		return bus.Event{}, fmt.Errorf("insert site %s: %w", site.ID, err)
	}
	return s.newEvent(ctx, EventSiteCreated, site.ID, site, now)
}

// CreateSite stores a new site. Returns Invalid (naming the field) for a
// malformed site and Conflict when the id is taken.
func (s *Service) CreateSite(ctx context.Context, site Site) (Site, error) {
	n, err := site.normalized()
	if err != nil {
		return Site{}, err
	}
	now := s.nowUTC()
	n.CreatedAt = now
	err = s.change(ctx, "create site "+n.ID, func(tx *store.Tx) ([]bus.Event, error) {
		ev, err := s.insertSite(ctx, tx, n, now)
		if err != nil {
			return nil, err
		}
		return []bus.Event{ev}, nil
	})
	if err != nil {
		return Site{}, err
	}
	return n, nil
}

// GetSite returns a site. Returns NotFound when it does not exist.
func (s *Service) GetSite(ctx context.Context, id string) (Site, error) {
	return s.getSite(ctx, s.db, id, false)
}

func (s *Service) getSite(ctx context.Context, q store.Querier, id string, forUpdate bool) (Site, error) {
	query := `SELECT ` + siteColumns + ` FROM sites WHERE id = ?`
	if forUpdate {
		query += s.db.ForUpdate()
	}
	return getByID(ctx, q, scanSite, query, "site", id)
}

// ListSites returns every site, by name then id.
func (s *Service) ListSites(ctx context.Context) ([]Site, error) {
	sites, err := queryAll(ctx, s.db, scanSite, `SELECT `+siteColumns+` FROM sites ORDER BY name, id`)
	if err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	return sites, nil
}

// DeleteSite removes a site. Returns NotFound when it does not exist and
// Conflict while devices refer to it.
func (s *Service) DeleteSite(ctx context.Context, id string) error {
	return s.change(ctx, "delete site "+id, func(tx *store.Tx) ([]bus.Event, error) {
		site, err := s.getSite(ctx, tx, id, true)
		if err != nil {
			return nil, err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM devices WHERE site = ?`, id).Scan(&n); err != nil {
			return nil, fmt.Errorf("count devices at site %s: %w", id, err)
		}
		if n > 0 {
			return nil, apperr.Errorf(apperr.Conflict, "site %s is the location of %d devices; move or delete them first", id, n)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sites WHERE id = ?`, id); err != nil {
			if store.IsForeignKeyViolation(err) {
				return nil, apperr.Errorf(apperr.Conflict, "site %s is the location of devices; move or delete them first", id)
			}
			return nil, fmt.Errorf("delete site %s: %w", id, err)
		}
		ev, err := s.newEvent(ctx, EventSiteDeleted, id, map[string]any{"id": id, "name": site.Name}, s.nowUTC())
		if err != nil {
			return nil, err
		}
		return []bus.Event{ev}, nil
	})
}
