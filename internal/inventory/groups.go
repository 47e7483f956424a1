package inventory

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/store"
)

// Group is a named set of devices an operator manages together (a rollout
// wave, a ward's equipment). A device may be in any number of groups;
// deleting a group or a device removes the membership.
type Group struct {
	// ID matches ^[a-z0-9][a-z0-9._-]{0,62}$; CreateGroup generates
	// "grp-" and 12 random characters when it is empty.
	ID string `json:"id"`
	// Name is required, at most 128 characters.
	Name        string `json:"name"`
	Description string `json:"description"`
	// DeviceCount is the number of members. Read-only.
	DeviceCount int `json:"device_count"`
	// CreatedAt is kept by the Service and ignored on input.
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// Validate reports whether g is acceptable input for CreateGroup. Returns
// an Invalid *apperr.Error naming the field.
func (g Group) Validate() error {
	_, err := g.normalized()
	return err
}

func (g Group) normalized() (Group, error) {
	out := Group{ID: strings.TrimSpace(g.ID)}
	if out.ID != "" {
		if msg := checkID(out.ID); msg != "" {
			return Group{}, apperr.InvalidField("id", "%s", msg)
		}
	}
	var err error
	if out.Name, err = cleanText("name", g.Name, MaxNameLen); err != nil {
		return Group{}, err
	}
	if out.Name == "" {
		return Group{}, apperr.InvalidField("name", "is required")
	}
	if out.Description, err = cleanText("description", g.Description, maxAddressLen); err != nil {
		return Group{}, err
	}
	return out, nil
}

// CreateGroup stores a new, empty group. Returns Invalid (naming the field)
// for a malformed group and Conflict when the id is taken.
func (s *Service) CreateGroup(ctx context.Context, g Group) (Group, error) {
	n, err := g.normalized()
	if err != nil {
		return Group{}, err
	}
	if n.ID == "" {
		n.ID = newID("grp-")
	}
	now := s.nowUTC()
	n.CreatedAt = now
	err = s.change(ctx, "create group "+n.ID, func(tx *store.Tx) ([]bus.Event, error) {
		_, err := tx.Exec(ctx, `INSERT INTO device_groups (id, name, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
			n.ID, n.Name, n.Description, store.Nanos(now), store.Nanos(now))
		if store.IsUniqueViolation(err) {
			return nil, apperr.Errorf(apperr.Conflict, "group %s exists already", n.ID)
		}
		if err != nil {
			return nil, fmt.Errorf("insert group: %w", err)
		}
		ev, err := s.newEvent(ctx, EventGroupCreated, n.ID, n, now)
		if err != nil {
			return nil, err
		}
		return []bus.Event{ev}, nil
	})
	if err != nil {
		return Group{}, err
	}
	return n, nil
}

const groupQuery = `SELECT g.id, g.name, g.description, g.created_at,
(SELECT COUNT(*) FROM group_members m WHERE m.group_id = g.id) FROM device_groups g`

func scanGroup(sc rowScanner) (Group, error) {
	var g Group
	var created int64
	if err := sc.Scan(&g.ID, &g.Name, &g.Description, &created, &g.DeviceCount); err != nil {
		return Group{}, err
	}
	g.CreatedAt = store.Time(created)
	return g, nil
}

// GetGroup returns a group with its member count. Returns NotFound when it
// does not exist.
func (s *Service) GetGroup(ctx context.Context, id string) (Group, error) {
	return getGroup(ctx, s.db, id)
}

func getGroup(ctx context.Context, q store.Querier, id string) (Group, error) {
	return getByID(ctx, q, scanGroup, groupQuery+` WHERE g.id = ?`, "group", id)
}

// ListGroups returns every group with its member count, by name then id.
func (s *Service) ListGroups(ctx context.Context) ([]Group, error) {
	groups, err := queryAll(ctx, s.db, scanGroup, groupQuery+` ORDER BY g.name, g.id`)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	return groups, nil
}

// DeleteGroup removes a group and its memberships; the devices stay.
// Returns NotFound when it does not exist.
func (s *Service) DeleteGroup(ctx context.Context, id string) error {
	return s.change(ctx, "delete group "+id, func(tx *store.Tx) ([]bus.Event, error) {
		g, err := getGroup(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM device_groups WHERE id = ?`, id); err != nil {
			return nil, fmt.Errorf("delete group %s: %w", id, err)
		}
		ev, err := s.newEvent(ctx, EventGroupDeleted, id, map[string]any{"id": id, "name": g.Name, "device_count": g.DeviceCount}, s.nowUTC())
		if err != nil {
			return nil, err
		}
		return []bus.Event{ev}, nil
	})
}

// MaxGroupMembersPerCall bounds the device ids one AddGroupMembers call
// takes.
const MaxGroupMembersPerCall = 1000

// AddGroupMembers adds devices to a group; devices already in it are left
// as they are. Returns NotFound when the group does not exist, and Invalid
// naming "devices[i]" for a malformed or unknown device id.
func (s *Service) AddGroupMembers(ctx context.Context, groupID string, deviceIDs []string) error {
	if len(deviceIDs) == 0 {
		return apperr.InvalidField("devices", "must list at least one device id")
	}
	if len(deviceIDs) > MaxGroupMembersPerCall {
		return apperr.InvalidField("devices", "lists %d devices; at most %d per call", len(deviceIDs), MaxGroupMembersPerCall)
	}
	var ids []string
	for i, id := range deviceIDs {
		if msg := checkID(id); msg != "" {
			return apperr.InvalidField(indexed("devices", i), "%s", msg)
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return s.change(ctx, "add members to group "+groupID, func(tx *store.Tx) ([]bus.Event, error) {
		if _, err := getGroup(ctx, tx, groupID); err != nil {
			return nil, err
		}
		exist, err := existingIDs(ctx, tx, `SELECT id FROM devices WHERE id IN (`+store.Placeholders(len(ids))+`)`, anys(ids))
		if err != nil {
			return nil, fmt.Errorf("look up devices: %w", err)
		}
		for i, id := range deviceIDs {
			if !exist[id] {
				return nil, apperr.InvalidField(indexed("devices", i), "device %s does not exist", quote(id))
			}
		}
		members, err := existingIDs(ctx, tx, `SELECT device_id FROM group_members WHERE group_id = ? AND device_id IN (`+store.Placeholders(len(ids))+`)`,
			append([]any{groupID}, anys(ids)...))
		if err != nil {
			return nil, fmt.Errorf("look up members of group %s: %w", groupID, err)
		}
		now := s.nowUTC()
		var added []string
		var args []any
		for _, id := range ids {
			if !members[id] {
				added = append(added, id)
				args = append(args, groupID, id, store.Nanos(now))
			}
		}
		if len(added) == 0 {
			return nil, nil
		}
		for chunk := range slices.Chunk(args, 3*300) {
			q := `INSERT INTO group_members (group_id, device_id, added_at) VALUES ` + store.Rows(len(chunk)/3, 3)
			if _, err := tx.Exec(ctx, q, chunk...); err != nil {
				return nil, fmt.Errorf("add members to group %s: %w", groupID, err)
			}
		}
		ev, err := s.newEvent(ctx, EventGroupMembersAdded, groupID, map[string]any{"devices": added}, now)
		if err != nil {
			return nil, err
		}
		return []bus.Event{ev}, nil
	})
}

// existingIDs runs a query that selects one id column and returns the set.
func existingIDs(ctx context.Context, tx *store.Tx, query string, args []any) (map[string]bool, error) {
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out[id] = true
	}
	return out, rows.Err()
}

// RemoveGroupMember removes a device from a group. Returns NotFound when
// the group does not exist or the device is not in it.
func (s *Service) RemoveGroupMember(ctx context.Context, groupID, deviceID string) error {
	if checkID(deviceID) != "" {
		return apperr.NotFoundf("device %s is not in group %s", quote(deviceID), quote(groupID))
	}
	op := fmt.Sprintf("remove device %s from group %s", deviceID, groupID)
	return s.change(ctx, op, func(tx *store.Tx) ([]bus.Event, error) {
		if _, err := getGroup(ctx, tx, groupID); err != nil {
			return nil, err
		}
		res, err := tx.Exec(ctx, `DELETE FROM group_members WHERE group_id = ? AND device_id = ?`, groupID, deviceID)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		} else if n == 0 {
			return nil, apperr.NotFoundf("device %s is not in group %s", quote(deviceID), groupID)
		}
		ev, err := s.newEvent(ctx, EventGroupMemberRemoved, groupID, map[string]any{"device": deviceID}, s.nowUTC())
		if err != nil {
			return nil, err
		}
		return []bus.Event{ev}, nil
	})
}
