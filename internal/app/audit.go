package app

import (
	"cmp"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/audit"
	"github.com/fleetward/fleetward/internal/broker"
	"github.com/fleetward/fleetward/internal/identity"
	"github.com/fleetward/fleetward/internal/inventory"
	"github.com/fleetward/fleetward/internal/scan"
	"github.com/fleetward/fleetward/internal/vuln"
)

// auditor runs network scans and audits for the server: a scan's results
// update the inventory (known devices get their open services, unknown
// addresses become unmanaged devices) and the exposure table, then an audit
// evaluates every check over the whole fleet, stores the findings and sets
// each device's risk score. One audit runs at a time; scans may overlap.
type auditor struct {
	store    *audit.Store
	vulns    *vuln.Store
	inv      *inventory.Service
	ca       *identity.CA
	sessions func() []broker.Session // nil without a broker
	// loggingProblem says why security events are not being recorded, or
	// ""; nil outside the server.
	loggingProblem func(context.Context) string
	acls           []audit.ACLRule
	allowed        []netip.Prefix
	log            *slog.Logger
	now            func() time.Time

	// base is the server's run context: background scans stop with it.
	base    context.Context
	auditMu sync.Mutex
	// lastAudit is the newest audit's result, for /metrics and the
	// dashboard.
	mu        sync.Mutex
	lastAudit AuditReport
	scans     sync.WaitGroup
}

// AuditReport is what one audit did.
type AuditReport struct {
	At        time.Time          `json:"at"`
	Duration  string             `json:"duration"`
	Devices   int                `json:"devices"`
	Findings  int                `json:"findings"`
	Changes   audit.ApplyResult  `json:"changes"`
	FleetRisk float64            `json:"fleet_risk"`
	Buckets   [10]int            `json:"risk_buckets"`
	Riskiest  []RiskiestDevice   `json:"riskiest"`
	Summary   audit.Summary      `json:"summary"`
	Errors    []string           `json:"errors,omitempty"`
	Scores    map[string]float64 `json:"-"`
}

// RiskiestDevice is one row of the riskiest-devices list.
type RiskiestDevice struct {
	ID       string  `json:"id"`
	Name     string  `json:"name"`
	Class    string  `json:"class"`
	Status   string  `json:"status"`
	Risk     float64 `json:"risk"`
	Findings int     `json:"findings"`
}

func newAuditor(core *Core, policies map[string]broker.Policy, allowed []netip.Prefix, log *slog.Logger) *auditor {
	a := &auditor{store: audit.NewStore(core.DB, core.Ledger), vulns: vuln.NewStore(core.DB), inv: core.Inventory, ca: core.CA,
		allowed: allowed, log: log, now: time.Now}
	classes := slices.Sorted(maps.Keys(policies))
	for _, class := range classes {
		p := policies[class]
		for _, t := range p.Publish {
			a.acls = append(a.acls, audit.ACLRule{Class: class, Action: "publish", Topic: t})
		}
		for _, t := range p.Subscribe {
			a.acls = append(a.acls, audit.ACLRule{Class: class, Action: "subscribe", Topic: t})
		}
	}
	return a
}

// ScanRequest asks the server to scan networks.
type ScanRequest struct {
	// Targets are CIDRs, addresses or host names.
	Targets []string `json:"targets"`
	// Ports, e.g. "22,80,8000-8100"; empty is the IoT port list.
	Ports string `json:"ports,omitempty"`
	// Credentials is "none" (the default) or "default": try the shipped
	// default-credential list on login services found.
	Credentials string `json:"credentials,omitempty"`
	// Rate is connection attempts per second; default 200.
	Rate float64 `json:"rate,omitempty"`
}

// Validate returns an Invalid error naming the first bad field.
func (r ScanRequest) Validate() error {
	if len(r.Targets) == 0 {
		return apperr.InvalidField("targets", "give at least one CIDR, address or host name")
	}
	if len(r.Targets) > 64 {
		return apperr.InvalidField("targets", "at most 64 targets per scan")
	}
	switch r.Credentials {
	case "", "none", "default":
	default:
		return apperr.InvalidField("credentials", "%q: one of none, default", r.Credentials)
	}
	if r.Rate < 0 || r.Rate > 10000 {
		return apperr.InvalidField("rate", "%g: from 1 to 10000 attempts a second", r.Rate)
	}
	if r.Ports != "" {
		if _, err := scan.ParsePorts(r.Ports); err != nil {
			return apperr.InvalidField("ports", "%v", err)
		}
	}
	return nil
}

// StartScan checks req, resolves and scope-checks its targets, records the
// scan as started by the context's actor and runs it in the background.
// Returns the record of the running scan; Invalid or Forbidden errors come
// before anything is sent.
func (a *auditor) StartScan(ctx context.Context, req ScanRequest) (audit.ScanRecord, error) {
	rec, addrs, opts, err := a.prepareScan(ctx, req)
	if err != nil {
		return rec, err
	}
	base := cmp.Or(a.base, context.Background())
	a.scans.Add(1)
	go func() {
		defer a.scans.Done()
		if _, err := a.runScan(actor.With(base, actor.From(ctx)), rec, addrs, opts); err != nil {
			a.log.Warn("scan failed", "scan", rec.ID, "err", err)
		}
	}()
	return rec, nil
}

// RunScanNow runs a scan in the caller's goroutine (scheduled scans, the
// demo) and returns its finished record.
func (a *auditor) RunScanNow(ctx context.Context, req ScanRequest) (audit.ScanRecord, error) {
	rec, addrs, opts, err := a.prepareScan(ctx, req)
	if err != nil {
		return rec, err
	}
	return a.runScan(ctx, rec, addrs, opts)
}

// prepareScan validates req, checks its scope and records the scan start.
func (a *auditor) prepareScan(ctx context.Context, req ScanRequest) (audit.ScanRecord, []netip.Addr, scan.Options, error) {
	var opts scan.Options
	if err := req.Validate(); err != nil {
		return audit.ScanRecord{}, nil, opts, err
	}
	addrs, err := scan.ParseTargets(ctx, req.Targets, nil)
	if err != nil {
		return audit.ScanRecord{}, nil, opts, err
	}
	if err := scan.CheckScope(addrs, a.allowed); err != nil {
		return audit.ScanRecord{}, nil, opts, err
	}
	opts = scan.Options{Rate: req.Rate, AllowedRanges: a.allowed}
	if req.Ports != "" {
		opts.Ports, _ = scan.ParsePorts(req.Ports)
	}
	if err := applyCredentialMode(&opts, cmp.Or(req.Credentials, "none")); err != nil {
		return audit.ScanRecord{}, nil, opts, err
	}
	rec, err := a.store.StartScan(ctx, req.Targets, req)
	return rec, addrs, opts, err
}

// applyCredentialMode sets the scan's credential audit: "none" tries no
// login, "default" the list shipped in the binary at the scanner's default
// per-host rate and cap.
func applyCredentialMode(opts *scan.Options, mode string) error {
	switch mode {
	case "none":
	case "default":
		opts.Credentials = scan.DefaultCredentials()
	default:
		return apperr.InvalidField("credentials", "%q: one of none, default", mode)
	}
	return nil
}

// runScan scans, merges the result into the inventory and the exposure
// table, completes the record and runs an audit.
func (a *auditor) runScan(ctx context.Context, rec audit.ScanRecord, addrs []netip.Addr, opts scan.Options) (audit.ScanRecord, error) {
	a.log.Info("scan started", "scan", rec.ID, "actor", rec.Actor, "targets", strings.Join(rec.Targets, " "), "addresses", len(addrs))
	res, scanErr := scan.Scan(ctx, addrs, opts)
	return a.finishScan(ctx, rec, addrs, res, scanErr)
}

// finishScan merges a scan's result (partial when scanErr is set) into the
// inventory and the exposure table, completes its record in the ledger and
// runs an audit.
func (a *auditor) finishScan(ctx context.Context, rec audit.ScanRecord, addrs []netip.Addr, res *scan.Result, scanErr error) (audit.ScanRecord, error) {
	if res == nil {
		res = &scan.Result{}
	}
	services, sum, err := a.merge(ctx, res)
	if err != nil {
		scanErr = errors.Join(scanErr, err)
	}
	sum.Addresses = len(addrs)
	covered, err := a.coveredAddresses(ctx, addrs, res)
	if err != nil {
		scanErr = errors.Join(scanErr, err)
	}
	done, err := a.store.FinishScan(ctx, rec.ID, covered, services, sum, scanErr)
	if err != nil {
		return rec, err
	}
	a.log.Info("scan finished", "scan", rec.ID, "status", done.Status, "hosts", sum.Hosts, "open_ports", sum.OpenPorts,
		"working_credentials", sum.Credentials, "unmanaged", sum.Unmanaged, "new_devices", sum.NewDevices)
	if _, err := a.RunAudit(actor.With(ctx, actor.Actor{Name: "system:audit"})); err != nil {
		a.log.Warn("audit after scan failed", "scan", rec.ID, "err", err)
	}
	return done, scanErr
}

// ScanRecording is a scan run outside the server (fleetward scan --record):
// started in the ledger before the first packet, finished with its result.
type ScanRecording struct {
	a   *auditor
	rec audit.ScanRecord
}

// StartScanRecording records that the context's actor starts a scan of
// targets with options.
func (c *Core) StartScanRecording(ctx context.Context, targets []string, options any) (*ScanRecording, error) {
	a := newAuditor(c, nil, nil, c.Log.With("component", "audit"))
	rec, err := a.store.StartScan(ctx, targets, options)
	if err != nil {
		return nil, err
	}
	return &ScanRecording{a: a, rec: rec}, nil
}

// Finish merges the result into the inventory, records the scan's end in
// the ledger and audits the fleet.
func (r *ScanRecording) Finish(ctx context.Context, addrs []netip.Addr, res *scan.Result, scanErr error) (audit.ScanRecord, error) {
	return r.a.finishScan(ctx, r.rec, addrs, res, scanErr)
}

// coveredAddresses are the scanned addresses the exposure table knows:
// those whose rows the scan replaces. (Listing every scanned address of a
// /16 would be 65,536 deletes for nothing.)
func (a *auditor) coveredAddresses(ctx context.Context, addrs []netip.Addr, res *scan.Result) ([]string, error) {
	known, err := a.store.Services(ctx, "")
	if err != nil {
		return nil, err
	}
	scanned := make(map[netip.Addr]bool, len(addrs))
	for _, ad := range addrs {
		scanned[ad] = true
	}
	set := map[string]bool{}
	for _, s := range known {
		if ad, err := netip.ParseAddr(s.Addr); err == nil && scanned[ad] {
			set[s.Addr] = true
		}
	}
	for _, h := range res.Hosts {
		set[h.Addr.String()] = true
	}
	return slices.Sorted(maps.Keys(set)), nil
}

// merge turns scanned hosts into exposure rows, updating known devices and
// creating an unmanaged device for every address no device has.
func (a *auditor) merge(ctx context.Context, res *scan.Result) ([]audit.Service, audit.ScanSummary, error) {
	var sum audit.ScanSummary
	byIP, err := a.devicesByIP(ctx)
	if err != nil {
		return nil, sum, err
	}
	var out []audit.Service
	var errs []error
	for _, h := range res.Hosts {
		ip := h.Addr.String()
		open := openPorts(h)
		if len(open) == 0 {
			continue
		}
		sum.Hosts++
		dev, known := byIP[ip]
		attrs := scanAttributes(open)
		if !known {
			d := inventory.Device{Name: "unmanaged " + ip, Class: inventory.ClassOther, Status: inventory.StatusUnmanaged,
				IPs: []string{ip}, Vendor: attrs["scan.vendor"], Tags: []string{"discovered-by-scan"}, Attributes: attrs}
			created, err := a.inv.CreateDevice(ctx, d)
			if err != nil {
				errs = append(errs, fmt.Errorf("create unmanaged device for %s: %w", ip, err))
			} else {
				dev, known = created, true
				sum.NewDevices++
			}
		} else if changed := mergedAttributes(dev.Attributes, attrs); changed != nil {
			if _, err := a.inv.UpdateDevice(ctx, dev.ID, inventory.DevicePatch{Attributes: &changed}); err != nil {
				errs = append(errs, fmt.Errorf("update device %s from scan: %w", dev.ID, err))
			}
		}
		if dev.Status == inventory.StatusUnmanaged {
			sum.Unmanaged++
		}
		for _, p := range open {
			svc := audit.Service{DeviceID: dev.ID, Addr: ip, Port: p.Number, Proto: p.Proto, Name: p.Service,
				Banner: p.Banner, Plaintext: p.Plaintext, AnonymousMQTT: p.AnonymousMQTT(), Details: p.Details}
			if c := workingCredential(p); c != nil {
				svc.Credential = c
				sum.Credentials++
			}
			sum.OpenPorts++
			out = append(out, svc)
		}
	}
	return out, sum, errors.Join(errs...)
}

func openPorts(h scan.Host) []scan.Port {
	var out []scan.Port
	for _, p := range h.Ports {
		if p.State == scan.StateOpen {
			out = append(out, p)
		}
	}
	return out
}

// scanAttributes summarises a host's open ports as device attributes.
func scanAttributes(open []scan.Port) map[string]string {
	attrs := map[string]string{}
	var svcs []string
	for _, p := range open {
		svcs = append(svcs, fmt.Sprintf("%s/%d %s", p.Proto, p.Number, p.Service))
		for _, k := range []string{"vendor", "product", "version"} {
			if v := p.Details[k]; v != "" && attrs["scan."+k] == "" {
				attrs["scan."+k] = truncateString(v, 200)
			}
		}
	}
	attrs["scan.services"] = truncateString(strings.Join(svcs, ", "), inventory.MaxAttrValueLen)
	return attrs
}

// mergedAttributes returns cur with scan's attributes set, or nil when
// nothing changes (a repeated scan must not add a ledger entry).
func mergedAttributes(cur, scan map[string]string) map[string]string {
	changed := false
	for k, v := range scan {
		if cur[k] != v {
			changed = true
		}
	}
	if !changed || len(cur)+len(scan) > inventory.MaxAttributes {
		return nil
	}
	out := maps.Clone(cur)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, scan)
	return out
}

func truncateString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// workingCredential is the credential that logged in on p, without its
// password, or nil.
func workingCredential(p scan.Port) *audit.WorkingCredential {
	c := p.Credentials
	if c == nil || !c.Works || c.Source == "anonymous" { // anonymous MQTT is its own finding
		return nil
	}
	return &audit.WorkingCredential{Username: c.Username, Source: fmt.Sprintf("%s (entry %d)", c.Source, c.Entry), PasswordHint: c.PasswordHint}
}

// devicesByIP indexes every device by its addresses.
func (a *auditor) devicesByIP(ctx context.Context) (map[string]inventory.Device, error) {
	devs, err := a.allDevices(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]inventory.Device{}
	for _, d := range devs {
		for _, ip := range d.IPs {
			out[ip] = d
		}
	}
	return out, nil
}

func (a *auditor) allDevices(ctx context.Context) ([]inventory.Device, error) {
	return allDevices(ctx, a.inv)
}

// allDevices reads the whole inventory, page by page.
func allDevices(ctx context.Context, inv *inventory.Service) ([]inventory.Device, error) {
	var out []inventory.Device
	f := inventory.Filter{Limit: inventory.MaxLimit, Sort: "id"}
	for {
		page, err := inv.ListDevices(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("list devices: %w", err)
		}
		out = append(out, page.Devices...)
		if page.NextCursor == "" {
			return out, nil
		}
		f.Cursor = page.NextCursor
	}
}

// RunAudit gathers a snapshot of the fleet, evaluates every check, stores
// the findings and sets every device's risk score.
func (a *auditor) RunAudit(ctx context.Context) (AuditReport, error) {
	a.auditMu.Lock()
	defer a.auditMu.Unlock()
	start := a.now()
	rep := AuditReport{At: start.UTC()}
	snap, devs, err := a.snapshot(ctx, start)
	if err != nil {
		return rep, err
	}
	found := audit.Evaluate(snap)
	changes, err := a.store.Apply(ctx, found)
	if err != nil {
		return rep, err
	}
	open, err := a.store.Findings(ctx, audit.FindingFilter{})
	if err != nil {
		return rep, err
	}
	byDevice := map[string][]audit.Finding{}
	for _, f := range open {
		byDevice[f.DeviceID] = append(byDevice[f.DeviceID], f)
	}
	scores := make(map[string]float64, len(devs))
	var all []float64
	for _, d := range snap.Devices {
		r := audit.DeviceRisk(d, byDevice[d.ID], start)
		scores[d.ID] = r
		if d.Status != inventory.StatusRetired {
			all = append(all, r)
		}
	}
	if err := a.inv.SetRiskScores(ctx, scores); err != nil {
		return rep, err
	}
	rep.Devices, rep.Findings, rep.Changes, rep.Scores = len(devs), len(found), changes, scores
	rep.FleetRisk, rep.Buckets = audit.FleetRisk(all), audit.RiskBuckets(all)
	for _, d := range devs {
		if scores[d.ID] > 0 {
			rep.Riskiest = append(rep.Riskiest, RiskiestDevice{ID: d.ID, Name: d.Name, Class: d.Class, Status: d.Status,
				Risk: scores[d.ID], Findings: len(byDevice[d.ID])})
		}
	}
	slices.SortFunc(rep.Riskiest, func(x, y RiskiestDevice) int {
		return cmp.Or(cmp.Compare(y.Risk, x.Risk), cmp.Compare(y.Findings, x.Findings), cmp.Compare(x.ID, y.ID))
	})
	rep.Riskiest = rep.Riskiest[:min(len(rep.Riskiest), 10)]
	if rep.Summary, err = a.store.Summarize(ctx); err != nil {
		return rep, err
	}
	rep.Duration = a.now().Sub(start).Round(time.Millisecond).String()
	a.mu.Lock()
	a.lastAudit = rep
	a.mu.Unlock()
	a.log.Info("audit finished", "devices", rep.Devices, "findings", rep.Findings, "opened", changes.Opened,
		"resolved", changes.Resolved, "fleet_risk", rep.FleetRisk, "took", rep.Duration)
	return rep, nil
}

// LastAudit returns the newest audit's report (zero before the first).
func (a *auditor) LastAudit() AuditReport {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastAudit
}

// snapshot gathers what the checks look at.
func (a *auditor) snapshot(ctx context.Context, now time.Time) (audit.Snapshot, []inventory.Device, error) {
	devs, err := a.allDevices(ctx)
	if err != nil {
		return audit.Snapshot{}, nil, err
	}
	snap := audit.Snapshot{Now: now, ACLs: a.acls}
	for _, d := range devs {
		snap.Devices = append(snap.Devices, audit.Device{ID: d.ID, Name: d.Name, Class: d.Class, Vendor: d.Vendor, Model: d.Model,
			FirmwareVersion: d.FirmwareVersion, Status: d.Status, IPs: d.IPs, Criticality: d.Attributes["criticality"]})
	}
	if snap.Services, err = a.store.Services(ctx, ""); err != nil {
		return snap, nil, err
	}
	if snap.Vulns, snap.EOL, err = a.vulnerabilities(ctx, devs, now); err != nil {
		return snap, nil, err
	}
	certs, err := a.ca.IssuedDeviceCertificates(ctx)
	if err != nil {
		return snap, nil, err
	}
	snap.Certificates = auditCertificates(certs)
	if chain, err := a.ca.Chain(ctx); err == nil {
		for _, c := range chain {
			name := "issuing CA"
			if c.IsCA && c.CheckSignatureFrom(c) == nil {
				name = "root CA"
			}
			snap.CAs = append(snap.CAs, audit.CACertificate{Name: name + " " + c.Subject.CommonName, Serial: c.SerialNumber.Text(16), NotAfter: c.NotAfter})
		}
	}
	if a.loggingProblem != nil {
		snap.LoggingProblem = a.loggingProblem(ctx)
	}
	if a.sessions != nil {
		for _, s := range a.sessions() {
			snap.Sessions = append(snap.Sessions, audit.Session{DeviceID: s.DeviceID, ClientID: s.ClientID, Serial: s.Serial, Remote: s.Remote})
		}
	}
	return snap, devs, nil
}

// auditCertificates describes issued certificates for the checks: key
// type and size, fingerprints, and whether a newer one of the same device
// supersedes it.
func auditCertificates(certs []identity.IssuedCertificate) []audit.Certificate {
	newest := map[string]time.Time{}
	for _, c := range certs {
		if c.Status != identity.StatusRevoked && c.NotBefore.After(newest[c.DeviceID]) {
			newest[c.DeviceID] = c.NotBefore
		}
	}
	var out []audit.Certificate
	for _, c := range certs {
		ac := audit.Certificate{DeviceID: c.DeviceID, Serial: c.Serial, NotAfter: c.NotAfter, Revoked: c.Status == identity.StatusRevoked,
			Superseded: c.Status != identity.StatusRevoked && c.NotBefore.Before(newest[c.DeviceID])}
		fp := sha256.Sum256(c.DER)
		ac.Fingerprint = hex.EncodeToString(fp[:])
		if x, err := x509.ParseCertificate(c.DER); err == nil {
			spki := sha256.Sum256(x.RawSubjectPublicKeyInfo)
			ac.SPKI = hex.EncodeToString(spki[:])
			ac.KeyAlgo = x.PublicKeyAlgorithm.String()
			if k, ok := x.PublicKey.(*rsa.PublicKey); ok {
				ac.RSABits, ac.RSAModulus = k.N.BitLen(), k.N
			}
		}
		out = append(out, ac)
	}
	return out
}

// schedule audits the fleet soon after start and every AuditInterval, and
// scans the configured targets every ScanInterval, until ctx ends.
func (a *auditor) schedule(ctx context.Context, cfg Config) {
	ctx = actor.With(ctx, actor.Actor{Name: "system:scheduler"})
	auditTick := time.NewTimer(2 * time.Second)
	defer auditTick.Stop()
	var scanTick <-chan time.Time
	if len(cfg.ScanTargets) > 0 {
		t := time.NewTicker(cfg.ScanInterval)
		defer t.Stop()
		scanTick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-auditTick.C:
			if _, err := a.RunAudit(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("scheduled audit failed", "err", err)
			}
			auditTick.Reset(cfg.AuditInterval)
		case <-scanTick:
			req := ScanRequest{Targets: cfg.ScanTargets, Credentials: cfg.ScanCredentials}
			if _, err := a.RunScanNow(ctx, req); err != nil && ctx.Err() == nil {
				a.log.Warn("scheduled scan failed", "err", err)
			}
		}
	}
}

// dashboardFindings is the audit as the dashboard sees it.
type dashboardFindings struct {
	*audit.Store
	a *auditor
}

// FleetRisk is the newest audit's fleet score and time.
func (d dashboardFindings) FleetRisk() (float64, time.Time) {
	rep := d.a.LastAudit()
	return rep.FleetRisk, rep.At
}

// Scan runs a scan now, as the context's actor, and audits after it.
func (s *Server) Scan(ctx context.Context, req ScanRequest) (audit.ScanRecord, error) {
	return s.audit.RunScanNow(ctx, req)
}

// Audit audits the fleet now.
func (s *Server) Audit(ctx context.Context) (AuditReport, error) { return s.audit.RunAudit(ctx) }

// Findings lists findings as the API does.
func (s *Server) Findings(ctx context.Context, f audit.FindingFilter) ([]audit.Finding, error) {
	return s.audit.store.Findings(ctx, f)
}

// loggingProblem checks that security events are being recorded: every
// ledger entry reached the bus, and the newest entries are signed into a
// checkpoint (the ledger signs every second while it grows).
func (s *Server) loggingProblem(ctx context.Context) string {
	if n := s.relaySkipped.Load(); n > 0 {
		return fmt.Sprintf("%d ledger entries could not be published on the bus (see the server log)", n)
	}
	newest, err := s.Ledger.EntriesByType(ctx, "", 1)
	if err != nil || len(newest) == 0 {
		return ""
	}
	cp, err := s.Ledger.Latest(ctx)
	if e := newest[0]; (err != nil || e.Index >= cp.Size) && time.Since(e.Time) > 5*time.Minute {
		return fmt.Sprintf("ledger entries up to #%d, the newest of %s, are not signed into a checkpoint", e.Index, e.Time.UTC().Format(time.RFC3339))
	}
	return ""
}
