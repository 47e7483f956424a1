package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/alert"
	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/auth"
	"github.com/fleetward/fleetward/internal/inventory"
)

func TestSensorSignalsBecomeOneAlertOnTheRightDevice(t *testing.T) {
	dir := t.TempDir()
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	s, err := app.Start(ctx, app.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if _, err := s.Inventory.CreateDevice(ctx, inventory.Device{ID: "cam-9", Name: "Dock camera", Class: "camera", IPs: []string{"192.168.2.109"}}); err != nil {
		t.Fatal(err)
	}
	sensor, _, _ := s.Auth.CreateToken(ctx, "sensor-1", auth.RoleOperator, nil, time.Hour)
	c := newAPIClient(t, s, dir, sensor)
	var sigs []string
	at := time.Now().UTC().Truncate(time.Second)
	for i := range 30 {
		sigs = append(sigs, fmt.Sprintf(`{"time":%q,"detector":"rule","behaviour":"telnet_scan","severity":"high","src_ip":"192.168.2.109","peer":"10.9.0.%d:23","score":%d,"threshold":20,"explanation":"SYN to 23/tcp of many hosts"}`,
			at.Add(time.Duration(i)*time.Second).Format(time.RFC3339), i, 20+i))
	}
	var res struct {
		Accepted int
		Alerts   []string
	}
	if st, _ := c.do("POST", "/api/v1/signals", `{"signals":[`+strings.Join(sigs, ",")+`]}`, &res); st != 200 || res.Accepted != 30 || len(res.Alerts) != 1 {
		t.Fatalf("submit = %d %+v; want 30 signals in one alert", st, res)
	}
	var list struct{ Alerts []alert.Alert }
	c.do("GET", "/api/v1/alerts?device=cam-9", "", &list)
	if len(list.Alerts) != 1 || list.Alerts[0].Signals != 30 || list.Alerts[0].MaxScore != 49 || len(list.Alerts[0].Peers) != 30 {
		t.Fatalf("alerts of cam-9 = %+v", list.Alerts)
	}
	if raised := countEntries(t, s, "cam-9", alert.EventAlertRaised); raised != 1 {
		t.Errorf("%d alert_raised entries in the ledger, want 1 (not one per signal)", raised)
	}
	// A sensor that knows the device names it; no address is needed.
	byID := `{"signals":[{"time":"` + at.Add(time.Minute).Format(time.RFC3339) + `","detector":"metric","behaviour":"message_surge","severity":"medium","device_id":"cam-9","explanation":"messages_in at 40 msg/s"}]}`
	if st, _ := c.do("POST", "/api/v1/signals", byID, &res); st != 200 || res.Accepted != 1 {
		t.Fatalf("submit a signal naming its device = %d %+v", st, res)
	}
	var both struct{ Alerts []alert.Alert }
	c.do("GET", "/api/v1/alerts?device=cam-9", "", &both)
	if len(both.Alerts) != 2 || both.Alerts[0].Behaviour != "message_surge" || both.Alerts[0].DeviceID != "cam-9" || both.Alerts[0].SrcIP != "" {
		t.Fatalf("alerts of cam-9 after a signal naming it = %+v; want the message surge on cam-9 besides the scan", both.Alerts)
	}
	for _, bc := range []struct {
		name, method, path, body string
		status                   int
		field                    string
	}{
		{"no signals", "POST", "/api/v1/signals", `{"signals":[]}`, 400, "signals"},
		{"a signal without a source", "POST", "/api/v1/signals", `{"signals":[{"time":"2026-11-28T10:00:00Z","behaviour":"x","severity":"low","explanation":""}]}`, 400, "signals[0].src_ip"},
		{"a signal of unknown severity", "POST", "/api/v1/signals", `{"signals":[{"time":"2026-11-28T10:00:00Z","behaviour":"x","severity":"bad","src_ip":"1.2.3.4","explanation":""}]}`, 400, "signals[0].severity"},
		{"malformed JSON", "POST", "/api/v1/signals", `{"signals":[`, 400, ""},
		{"a bad since", "GET", "/api/v1/alerts?since=yesterday", "", 400, "since"},
		{"closing without a reason", "POST", "/api/v1/alerts/" + list.Alerts[0].ID + "/close", `{"reason":""}`, 400, "reason"},
		{"an unknown alert", "GET", "/api/v1/alerts/alert-nope", "", 404, ""},
	} {
		t.Run(bc.name, func(t *testing.T) {
			if st, field := c.do(bc.method, bc.path, bc.body, nil); st != bc.status || field != bc.field {
				t.Errorf("%s %s = %d field %q, want %d field %q", bc.method, bc.path, st, field, bc.status, bc.field)
			}
		})
	}
}

// A sensor on an uplink sees routed packets with the router's MAC: the
// signal's IP names the device, and a router's MAC names it only for its
// own addresses and link-local ones; another device's MAC names it for an
// address the inventory does not have.
func TestSignalsResolveTheirDeviceByIPBeforeMAC(t *testing.T) {
	dir := t.TempDir()
	s, _ := startServer(t, dir, false)
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	for _, d := range []inventory.Device{
		{ID: "router-1", Name: "Router", Class: "router", IPs: []string{"10.99.0.1"}, MACs: []string{"1e:36:f2:ff:db:22"}},
		{ID: "cam-2", Name: "Camera behind it", Class: "camera", IPs: []string{"10.99.1.3"}},
		{ID: "lock-3", Name: "Lock known by MAC", Class: "lock", MACs: []string{"1e:36:f2:00:00:03"}},
	} {
		if _, err := s.Inventory.CreateDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	sensor, _, _ := s.Auth.CreateToken(ctx, "sensor-1", auth.RoleOperator, nil, time.Hour)
	c := newAPIClient(t, s, dir, sensor)
	at := time.Now().UTC().Truncate(time.Second)
	for i, tc := range []struct{ ip, mac, want string }{
		{"10.99.1.3", "1e:36:f2:ff:db:22", "cam-2"},                    // routed: the IP's device, not the router's MAC
		{"10.99.0.1", "1e:36:f2:ff:db:22", "router-1"},                 // the router itself
		{"203.0.113.7", "1e:36:f2:ff:db:22", ""},                       // from outside, through the router
		{"fe80::1c36:f2ff:feff:db22", "1E:36:F2:FF:DB:22", "router-1"}, // link-local: never routed
		{"10.99.1.44", "1e:36:f2:00:00:03", "lock-3"},                  // a device known by its MAC alone
	} {
		behaviour := fmt.Sprintf("check_%d", i)
		body := fmt.Sprintf(`{"signals":[{"time":%q,"detector":"rule","behaviour":%q,"severity":"low","src_ip":%q,"src_mac":%q,"explanation":"x"}]}`,
			at.Format(time.RFC3339), behaviour, tc.ip, tc.mac)
		if st, _ := c.do("POST", "/api/v1/signals", body, nil); st != 200 {
			t.Fatalf("submit %s = %d", tc.ip, st)
		}
		var list struct{ Alerts []alert.Alert }
		c.do("GET", "/api/v1/alerts", "", &list)
		got := "(none)"
		for _, a := range list.Alerts {
			if a.Behaviour == behaviour {
				got = a.DeviceID
			}
		}
		if got != tc.want {
			t.Errorf("a signal from %s, MAC %s, went to device %q; want %q", tc.ip, tc.mac, got, tc.want)
		}
	}
}

// An alert raised before its device is in the inventory joins the device
// once it is enrolled or given the address: both the alert still open in
// the aggregator and one stored long ago. A router enrolled with the MAC
// of routed signals does not claim them.
func TestAlertsRaisedBeforeTheirDeviceIsKnownJoinIt(t *testing.T) {
	dir := t.TempDir()
	s, _ := startServer(t, dir, false)
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	sensor, _, _ := s.Auth.CreateToken(ctx, "sensor-1", auth.RoleOperator, nil, time.Hour)
	c := newAPIClient(t, s, dir, sensor)
	now := time.Now().UTC().Truncate(time.Second)
	for _, sig := range []struct {
		at              time.Time
		behaviour, ip   string
		mac             string
		deviceAfterward string
	}{
		{now, "telnet_scan", "10.98.0.5", "", "cam-new"},                      // open in the aggregator
		{now.Add(-48 * time.Hour), "brute_force", "10.98.0.5", "", "cam-new"}, // stored, its window long past
		{now, "port_scan", "10.98.0.6", "1E:36:F2:00:00:07", "plug-7"},        // known later by its MAC alone
		{now, "host_scan", "198.51.100.9", "1e:36:f2:ff:db:99", ""},           // routed in from outside
		{now, "syn_flood", "10.98.0.77", "", ""},                              // nobody's
		{now.Add(-10 * 24 * time.Hour), "udp_flood", "10.98.0.5", "", ""},     // too old: the address was someone else's
	} {
		body := fmt.Sprintf(`{"signals":[{"time":%q,"detector":"rule","behaviour":%q,"severity":"high","src_ip":%q,"src_mac":%q,"explanation":"x"}]}`,
			sig.at.Format(time.RFC3339), sig.behaviour, sig.ip, sig.mac)
		if st, _ := c.do("POST", "/api/v1/signals", body, nil); st != 200 {
			t.Fatalf("submit %s = %d", sig.behaviour, st)
		}
	}
	var before struct{ Alerts []alert.Alert }
	c.do("GET", "/api/v1/alerts", "", &before)
	for _, a := range before.Alerts {
		if a.DeviceID != "" {
			t.Fatalf("alert %s has device %q before any device was enrolled", a.Behaviour, a.DeviceID)
		}
	}
	if _, err := s.Inventory.CreateDevice(ctx, inventory.Device{ID: "cam-new", Name: "New camera", Class: "camera", IPs: []string{"10.98.0.5"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Inventory.CreateDevice(ctx, inventory.Device{ID: "plug-7", Name: "Lights", Class: "lighting"}); err != nil {
		t.Fatal(err)
	}
	macs := []string{"1e:36:f2:00:00:07"}
	if _, err := s.Inventory.UpdateDevice(ctx, "plug-7", inventory.DevicePatch{MACs: &macs}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Inventory.CreateDevice(ctx, inventory.Device{ID: "router-9", Name: "Router", Class: "router", IPs: []string{"10.98.0.1"}, MACs: []string{"1e:36:f2:ff:db:99"}}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"telnet_scan": "cam-new", "brute_force": "cam-new", "port_scan": "plug-7", "host_scan": "", "syn_flood": "", "udp_flood": ""}
	got := map[string]string{}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var list struct{ Alerts []alert.Alert }
		c.do("GET", "/api/v1/alerts?since="+now.Add(-30*24*time.Hour).Format(time.RFC3339), "", &list)
		clear(got)
		for _, a := range list.Alerts {
			got[a.Behaviour] = a.DeviceID
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			break
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("devices of the alerts after enrolment = %v; want %v", got, want)
	}
	// A new signal of the open alert folds into it, now on the device.
	body := fmt.Sprintf(`{"signals":[{"time":%q,"detector":"rule","behaviour":"telnet_scan","severity":"high","src_ip":"10.98.0.5","explanation":"x"}]}`,
		now.Add(time.Second).Format(time.RFC3339))
	var res struct{ Alerts []string }
	if st, _ := c.do("POST", "/api/v1/signals", body, &res); st != 200 {
		t.Fatalf("submit = %d", st)
	}
	var list struct{ Alerts []alert.Alert }
	c.do("GET", "/api/v1/alerts?device=cam-new", "", &list)
	if len(list.Alerts) != 2 || list.Alerts[0].Behaviour != "telnet_scan" || list.Alerts[0].Signals != 2 || list.Alerts[0].ID != res.Alerts[0] {
		t.Errorf("alerts of cam-new after one more signal = %+v; want the telnet scan with 2 signals, and the brute force", list.Alerts)
	}
	if attributed := countEntries(t, s, "cam-new", alert.EventAlertAttributed); attributed != 2 {
		t.Errorf("%d alert_attributed entries for cam-new in the ledger, want 2", attributed)
	}
}

// A router's MAC is on every routed packet: a thousand alerts of outside
// addresses carrying it must not crowd out the router's own alert when
// the router is enrolled.
func TestEnrollingARouterTakesItsOwnAlertNotTheRoutedOnes(t *testing.T) {
	dir := t.TempDir()
	s, _ := startServer(t, dir, false)
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	sensor, _, _ := s.Auth.CreateToken(ctx, "sensor-1", auth.RoleOperator, nil, time.Hour)
	c := newAPIClient(t, s, dir, sensor)
	now := time.Now().UTC().Truncate(time.Second)
	own := fmt.Sprintf(`{"signals":[{"time":%q,"detector":"rule","behaviour":"port_scan","severity":"medium","src_ip":"10.97.0.1","src_mac":"1e:36:f2:ff:db:97","explanation":"x"}]}`,
		now.Add(-time.Hour).Format(time.RFC3339))
	if st, _ := c.do("POST", "/api/v1/signals", own, nil); st != 200 {
		t.Fatalf("submit = %d", st)
	}
	var routed []string
	for i := range 1100 {
		routed = append(routed, fmt.Sprintf(`{"time":%q,"detector":"rule","behaviour":"host_scan","severity":"high","src_ip":"198.51.%d.%d","src_mac":"1e:36:f2:ff:db:97","explanation":"x"}`,
			now.Format(time.RFC3339), i/250, i%250))
	}
	for i := 0; i < len(routed); i += 1000 {
		body := `{"signals":[` + strings.Join(routed[i:min(i+1000, len(routed))], ",") + `]}`
		if st, _ := c.do("POST", "/api/v1/signals", body, nil); st != 200 {
			t.Fatalf("submit routed = %d", st)
		}
	}
	if _, err := s.Inventory.CreateDevice(ctx, inventory.Device{ID: "router-7", Name: "Router", Class: "router", IPs: []string{"10.97.0.1"}, MACs: []string{"1e:36:f2:ff:db:97"}}); err != nil {
		t.Fatal(err)
	}
	var got []alert.Alert
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var list struct{ Alerts []alert.Alert }
		c.do("GET", "/api/v1/alerts?device=router-7&limit=1000", "", &list)
		if got = list.Alerts; len(got) > 0 {
			break
		}
	}
	if len(got) != 1 || got[0].SrcIP != "10.97.0.1" {
		t.Fatalf("alerts of router-7 = %d (%+v); want its own port scan alone", len(got), got)
	}
}

// countEntries counts the ledger's entries of type typ about subject
// (ledgerEntries).
func countEntries(t *testing.T, s *app.Server, subject, typ string) int {
	t.Helper()
	n := 0
	for _, e := range ledgerEntries(t, s.Ledger, typ) {
		if e.Type == typ && e.Subject == subject {
			n++
		}
	}
	return n
}
