package app

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fleetward/fleetward/internal/alert"
	"github.com/fleetward/fleetward/internal/api"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/auth"
	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/inventory"
)

// alerts receives detections from sensors and in-process detectors,
// folds them into alerts on the right device and stores them.
type alerts struct {
	store *alert.Store
	agg   *alert.Aggregator
	inv   *inventory.Service

	mu       sync.Mutex
	byIP     map[string]string
	byMAC    map[string]string
	byID     map[string][2]string // a device's first IP and MAC
	forwards map[string]bool      // routers and gateways
	indexAt  time.Time

	// changed holds the devices created or updated since attribute last
	// ran (inventoryChanged); wake tells attributeLoop there are some.
	changedMu sync.Mutex
	changed   map[string]bool
	wake      chan struct{}
}

func newAlerts(core *Core) *alerts {
	a := &alerts{store: alert.NewStore(core.DB, core.Ledger), inv: core.Inventory, changed: map[string]bool{}, wake: make(chan struct{}, 1)}
	a.agg = alert.NewAggregator(alert.DefaultWindow, a.resolve)
	return a
}

// inventoryChanged hears the inventory's committed events (through
// deviceAccess) and notes the devices created or updated, whose addresses
// may now name the source of alerts raised without a device. It returns
// at once: attributeLoop does the work, once per burst of changes (an
// import of a fleet is one).
func (a *alerts) inventoryChanged(ev bus.Event) {
	if ev.Type != inventory.EventDeviceCreated && ev.Type != inventory.EventDeviceUpdated {
		return
	}
	a.changedMu.Lock()
	if len(a.changed) < maxChangedDevices {
		a.changed[ev.Subject] = true
	}
	a.changedMu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// maxChangedDevices bounds the devices attribute handles in one pass;
// past it, the others wait for their next change (an import of more
// devices than that at once attributes the first ones' alerts).
const maxChangedDevices = 10000

// attributeHorizon is how far back attribute looks: an address names a
// device over days, not months (DHCP gives it to another).
const attributeHorizon = 7 * 24 * time.Hour

// attributeSettle is how long attributeLoop waits after a change for
// others of the same burst.
const attributeSettle = 500 * time.Millisecond

// attributeLoop runs attribute after each burst of inventory changes
// until ctx ends.
func (a *alerts) attributeLoop(ctx context.Context, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.wake:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(attributeSettle):
		}
		if n, err := a.attribute(ctx); err != nil {
			log.Warn("attributing alerts to changed devices", "err", err)
		} else if n > 0 {
			log.Info("alerts raised before their device was in the inventory now have it", "alerts", n)
		}
	}
}

// attribute gives the changed devices the alerts, open in the aggregator
// or stored, that were raised without a device and that their addresses
// now resolve to them (by resolve's rules: a router's MAC does not claim
// routed addresses). Each is recorded in the ledger. It returns how many
// alerts it attributed.
func (a *alerts) attribute(ctx context.Context) (int, error) {
	a.changedMu.Lock()
	changed := a.changed
	a.changed = map[string]bool{}
	a.changedMu.Unlock()
	if len(changed) == 0 {
		return 0, nil
	}
	a.mu.Lock()
	a.indexAt = time.Time{}
	a.refreshIndex()
	var ips, macs []string
	for ip, id := range a.byIP {
		if changed[id] {
			ips = append(ips, ip)
		}
	}
	for mac, id := range a.byMAC {
		// A router's MAC is on every routed packet: it names the router
		// for no stored alert but link-local ones, which its IPs name too.
		if changed[id] && !a.forwards[id] {
			macs = append(macs, mac)
		}
	}
	a.mu.Unlock()
	n := 0
	var errs []error
	give := func(id, deviceID string) {
		if done, err := a.store.Attribute(ctx, id, deviceID); err != nil {
			errs = append(errs, err)
		} else if done {
			n++
		}
	}
	since := time.Now().Add(-attributeHorizon)
	for _, al := range a.agg.ResolveOpen(since) {
		give(al.ID, al.DeviceID)
	}
	// In batches: a query's parameters are limited (SQLite: 32,766). A
	// batch is asked again while it fills a page and gives some alert a
	// device (those are then no longer unattributed).
	const batch = 500
	for len(ips) > 0 || len(macs) > 0 {
		bi, bm := ips[:min(batch, len(ips))], macs[:min(batch, len(macs))]
		ips, macs = ips[len(bi):], macs[len(bm):]
		for {
			stored, err := a.store.Unattributed(ctx, since, bi, bm)
			if err != nil {
				errs = append(errs, err)
				break
			}
			before := n
			for _, al := range stored {
				if id := a.resolve(al.SrcIP, al.SrcMAC); id != "" && changed[id] {
					give(al.ID, id)
				}
			}
			if len(stored) < alert.MaxUnattributed || n == before {
				break
			}
		}
	}
	return n, errors.Join(errs...)
}

// resolve finds the device a signal's source is, by its address. The IP
// comes first: a sensor on an uplink sees routed packets with the
// router's MAC as their source. The MAC names the device when the IP
// names none (an address the inventory has not caught up with), unless
// the device is a router or gateway, which forwards packets of addresses
// not its own, and the IP is not link-local (never forwarded).
func (a *alerts) resolve(ip, mac string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refreshIndex()
	if id := a.byIP[ip]; id != "" {
		return id
	}
	id := a.byMAC[strings.ToLower(mac)]
	if addr, err := netip.ParseAddr(ip); a.forwards[id] && err == nil && !addr.IsLinkLocalUnicast() {
		return ""
	}
	return id
}

// addresses returns an address and a MAC of a device, "" when the
// inventory has none (or does not have the device).
func (a *alerts) addresses(deviceID string) (ip, mac string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refreshIndex()
	addr := a.byID[deviceID]
	return addr[0], addr[1]
}

// refreshIndex rebuilds the address index of the inventory when it is
// older than a minute. a.mu is held.
func (a *alerts) refreshIndex() {
	if time.Since(a.indexAt) <= time.Minute {
		return
	}
	devs, err := allDevices(context.Background(), a.inv)
	if err != nil {
		return
	}
	a.byIP, a.byMAC, a.byID, a.forwards = map[string]string{}, map[string]string{}, map[string][2]string{}, map[string]bool{}
	for _, d := range devs {
		var addr [2]string
		for _, x := range d.IPs {
			a.byIP[x] = d.ID
			addr[0] = cmp.Or(addr[0], x)
		}
		a.forwards[d.ID] = d.Class == "router" || d.Class == "gateway"
		for _, m := range d.MACs {
			a.byMAC[m] = d.ID
			addr[1] = cmp.Or(addr[1], m)
		}
		a.byID[d.ID] = addr
	}
	a.indexAt = time.Now()
}

// Raise folds a signal into its alert and stores it.
func (a *alerts) Raise(ctx context.Context, sig alert.Signal) (alert.Alert, error) {
	al, started, err := a.agg.Add(sig)
	if err != nil {
		return al, err
	}
	if started {
		a.agg.Expire(sig.Time)
	}
	return al, a.store.Save(ctx, al, started)
}

func registerAlertAPI(s *api.Server, a *alerts) {
	s.Handle(api.Route{Method: "POST", Pattern: "/api/v1/signals", Perm: auth.PermWrite, BodyLimit: 4 << 20,
		Handler: func(w http.ResponseWriter, r *http.Request) error {
			var req alert.SignalReport
			if err := api.DecodeJSON(r, &req); err != nil {
				return err
			}
			if len(req.Signals) == 0 || len(req.Signals) > alert.MaxReportSignals {
				return apperr.InvalidField("signals", "1 to %d signals per request", alert.MaxReportSignals)
			}
			if err := alert.ValidateItems("signals", req.Signals); err != nil {
				return err
			}
			ids := []string{}
			for _, sig := range req.Signals {
				al, err := a.Raise(r.Context(), sig)
				if err != nil {
					return err
				}
				if len(ids) == 0 || ids[len(ids)-1] != al.ID {
					ids = append(ids, al.ID)
				}
			}
			api.WriteJSON(w, http.StatusOK, map[string]any{"accepted": len(req.Signals), "alerts": ids})
			return nil
		}})
	s.Handle(api.Route{Method: "GET", Pattern: "/api/v1/alerts", Perm: auth.PermRead,
		Handler: func(w http.ResponseWriter, r *http.Request) error {
			q := r.URL.Query()
			f := alert.Filter{DeviceID: q.Get("device"), Status: q.Get("status")}
			if v := q.Get("since"); v != "" {
				t, err := time.Parse(time.RFC3339, v)
				if err != nil {
					return apperr.InvalidField("since", "%q: an RFC 3339 time", v)
				}
				f.Since = t
			}
			if v := q.Get("limit"); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil {
					return apperr.InvalidField("limit", "%q: a number", v)
				}
				f.Limit = n
			}
			list, err := a.store.List(r.Context(), f)
			if err != nil {
				return err
			}
			api.WriteJSON(w, http.StatusOK, map[string]any{"alerts": list})
			return nil
		}})
	s.Handle(api.Route{Method: "GET", Pattern: "/api/v1/alerts/{id}", Perm: auth.PermRead,
		Handler: func(w http.ResponseWriter, r *http.Request) error {
			al, err := a.store.Get(r.Context(), r.PathValue("id"))
			if err != nil {
				return err
			}
			api.WriteJSON(w, http.StatusOK, al)
			return nil
		}})
	s.Handle(api.Route{Method: "POST", Pattern: "/api/v1/alerts/{id}/close", Perm: auth.PermWrite,
		Handler: func(w http.ResponseWriter, r *http.Request) error {
			var req struct {
				Reason string `json:"reason"`
			}
			if err := api.DecodeJSON(r, &req); err != nil {
				return err
			}
			al, err := a.store.Close(r.Context(), r.PathValue("id"), req.Reason)
			if err != nil {
				return err
			}
			api.WriteJSON(w, http.StatusOK, al)
			return nil
		}})
}

// RaiseAlert folds a detection of an in-process detector into its alert.
func (s *Server) RaiseAlert(ctx context.Context, sig alert.Signal) (alert.Alert, error) {
	return s.alerts.Raise(ctx, sig)
}

// ListAlerts returns the stored alerts that match f, as GET /api/v1/alerts.
func (s *Server) ListAlerts(ctx context.Context, f alert.Filter) ([]alert.Alert, error) {
	return s.alerts.store.List(ctx, f)
}
