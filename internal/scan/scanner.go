// Package scan discovers devices on networks the operator is responsible
// for: TCP connect discovery of IoT ports, then service identification and
// banner grabbing on the open ones. A scan never sends anything to an
// address outside its scope (private, loopback and link-local ranges, plus
// the ranges the operator allows explicitly).
package scan

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
)

// Port states.
const (
	StateOpen      = "open"
	StateNotProbed = "not probed"
)

// Options configures a scan. The zero value scans DefaultTCPPorts with the
// documented defaults.
type Options struct {
	// Ports are the TCP ports to try; default DefaultTCPPorts.
	Ports []int `json:"ports,omitempty"`
	// UDPPorts are the UDP ports to probe, each one with a probe in
	// udpProbes; default DefaultUDPPorts when Ports is empty too, none
	// when only Ports is given.
	UDPPorts []int `json:"udp_ports,omitempty"`
	// Concurrency is the most connection attempts in flight; default 512.
	// Most of them wait on addresses that never answer (no ARP reply), so
	// a high bound costs sockets, not traffic: Rate bounds the traffic.
	Concurrency int `json:"concurrency,omitempty"`
	// Rate is the most packets started per second (TCP connection attempts,
	// the follow-up connections that identify a service, UDP datagrams);
	// default 1000, which bench/scan.sh needs to finish a /24 before
	// nmap -T4 does.
	Rate float64 `json:"rate,omitempty"`
	// Timeout bounds one connection attempt; default 1.5 s.
	Timeout time.Duration `json:"timeout,omitempty"`
	// ReadTimeout bounds each read while identifying a service; default 2 s.
	ReadTimeout time.Duration `json:"read_timeout,omitempty"`
	// AllowedRanges are public ranges the operator is authorised to scan.
	AllowedRanges []netip.Prefix `json:"allowed_ranges,omitempty"`
	// Progress, if set, is called after each address and port is tried,
	// from one goroutine at a time.
	Progress func(done, total uint64) `json:"-"`
	// Credentials, if any, are tried on every telnet, SSH, HTTP-auth and
	// MQTT service found (see credentials_audit.go). Empty: no login
	// attempt at all. These attempts do not count against Rate.
	Credentials []Credential `json:"-"`
	// CredentialRate is the most login attempts per host per minute;
	// default DefaultCredentialRate.
	CredentialRate float64 `json:"credential_rate,omitempty"`
	// CredentialCap is the most login attempts per host; default
	// DefaultCredentialCap.
	CredentialCap int `json:"credential_cap,omitempty"`
	// CredentialProgress, if set, is called before each login attempt.
	CredentialProgress func(target, service string, attempt, planned int) `json:"-"`
}

func (o Options) withDefaults() Options {
	if len(o.Ports) == 0 && len(o.UDPPorts) == 0 {
		o.Ports, o.UDPPorts = DefaultTCPPorts, DefaultUDPPorts
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 512
	}
	if o.Rate <= 0 {
		o.Rate = 1000
	}
	if o.Timeout <= 0 {
		o.Timeout = 1500 * time.Millisecond
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 2 * time.Second
	}
	if o.CredentialRate <= 0 {
		o.CredentialRate = DefaultCredentialRate
	}
	if o.CredentialCap <= 0 {
		o.CredentialCap = DefaultCredentialCap
	}
	return o
}

// Validate returns an Invalid error naming the first bad option.
func (o Options) Validate() error {
	for _, p := range o.Ports {
		if p < 1 || p > 65535 {
			return apperr.InvalidField("ports", "%d is not a port number", p)
		}
	}
	for _, p := range o.UDPPorts {
		if _, ok := udpProbes[p]; !ok {
			return apperr.InvalidField("udp_ports", "%d: no UDP probe for this port (5683 CoAP, 1900 SSDP, 47808 BACnet)", p)
		}
	}
	if o.Concurrency > 4096 {
		return apperr.InvalidField("concurrency", "%d: at most 4096", o.Concurrency)
	}
	if o.Rate > 100000 {
		return apperr.InvalidField("rate", "%g: at most 100000 attempts a second", o.Rate)
	}
	if o.CredentialRate > 6000 {
		return apperr.InvalidField("credential_rate", "%g: at most 6000 attempts per host a minute", o.CredentialRate)
	}
	if o.CredentialCap > MaxCredentials {
		return apperr.InvalidField("credential_cap", "%d: at most %d attempts per host", o.CredentialCap, MaxCredentials)
	}
	return nil
}

// Result is the outcome of one scan.
type Result struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Addresses is the number of addresses tried.
	Addresses int `json:"addresses"`
	// Hosts are the addresses with at least one open port, in address order.
	Hosts []Host `json:"hosts"`
	// NotProbed are ports this scan did not try, so a report does not read
	// them as closed. Every UDP port of the default list now has a probe,
	// so it is empty; it stays for readers of older results.
	NotProbed []Port `json:"not_probed,omitempty"`
}

// Host is an address with its open ports.
type Host struct {
	Addr  netip.Addr `json:"addr"`
	Ports []Port     `json:"ports"`
	// Guess is what the banners suggest the host is (fingerprint.go), or
	// nil when none was recognised.
	Guess *Guess `json:"guess,omitempty"`
}

// Port is one port of a host and what answers on it.
type Port struct {
	Number int    `json:"number"`
	Proto  string `json:"proto"` // "tcp" or "udp"
	State  string `json:"state"` // StateOpen or StateNotProbed
	// Service is the protocol recognised ("telnet", "ssh", "http",
	// "https", "mqtt", "mqtts", "rtsp"), or the name usually found on
	// the port, or "unknown".
	Service string `json:"service"`
	// Banner is a one-line printable summary of what the service said.
	Banner  string            `json:"banner,omitempty"`
	Details map[string]string `json:"details,omitempty"`
	// Plaintext is true for a service that carries credentials or data
	// without encryption (telnet, HTTP, MQTT without TLS).
	Plaintext bool `json:"plaintext"`
	// Credentials is the credential audit of this service, when one ran.
	Credentials *CredentialFinding `json:"credentials,omitempty"`
}

// Scan tries every port of opts on every address and identifies the
// services that answer. It refuses, before sending anything, addresses that
// are not InScope (a Forbidden error naming the address). On cancellation it
// returns what it found so far with the context's error.
func Scan(ctx context.Context, addrs []netip.Addr, opts Options) (*Result, error) {
	s := &scanner{opts: opts.withDefaults(), dial: (&net.Dialer{}).DialContext}
	return s.run(ctx, addrs)
}

type scanner struct {
	opts Options
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	pace *pacer
}

type job struct {
	addr netip.Addr
	port int
	udp  bool
}

func (s *scanner) run(ctx context.Context, addrs []netip.Addr) (*Result, error) {
	if err := s.opts.Validate(); err != nil {
		return nil, err
	}
	if len(addrs) > MaxAddresses {
		return nil, apperr.InvalidField("targets", "more than %d addresses; split the scan", MaxAddresses)
	}
	// Scope first: nothing is dialled unless every address is in scope.
	if err := CheckScope(addrs, s.opts.AllowedRanges); err != nil {
		return nil, err
	}
	res := &Result{Started: time.Now().UTC(), Addresses: len(addrs)}
	s.pace = newPacer(s.opts.Rate)
	total := uint64(len(addrs) * (len(s.opts.Ports) + len(s.opts.UDPPorts)))
	jobs := make(chan job)
	var (
		mu    sync.Mutex
		done  uint64
		found = map[netip.Addr][]Port{}
		wg    sync.WaitGroup
	)
	for range min(s.opts.Concurrency, int(total)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				var p Port
				var open bool
				if j.udp {
					p, open = s.probeUDP(ctx, j.addr, j.port)
				} else {
					p, open = s.probe(ctx, j.addr, j.port)
				}
				mu.Lock()
				if open {
					found[j.addr] = append(found[j.addr], p)
				}
				done++
				if s.opts.Progress != nil {
					s.opts.Progress(done, total)
				}
				mu.Unlock()
			}
		}()
	}
	// The workers pace every packet they start (s.pace), so the feed
	// only hands out work.
	var ctxErr error
feed:
	for _, a := range addrs {
		for i := range len(s.opts.Ports) + len(s.opts.UDPPorts) {
			j := job{addr: a}
			if i < len(s.opts.Ports) {
				j.port = s.opts.Ports[i]
			} else {
				j.port, j.udp = s.opts.UDPPorts[i-len(s.opts.Ports)], true
			}
			select {
			case <-ctx.Done():
				ctxErr = ctx.Err()
				break feed
			case jobs <- j:
			}
		}
	}
	close(jobs)
	wg.Wait()
	if len(s.opts.Credentials) > 0 && ctxErr == nil {
		ctxErr = s.auditHosts(ctx, found)
	}
	for a, ports := range found {
		slices.SortFunc(ports, func(x, y Port) int {
			if x.Number != y.Number {
				return x.Number - y.Number
			}
			return strings.Compare(x.Proto, y.Proto)
		})
		res.Hosts = append(res.Hosts, Host{Addr: a, Ports: ports, Guess: guessHost(ports)})
	}
	slices.SortFunc(res.Hosts, func(x, y Host) int { return x.Addr.Compare(y.Addr) })
	res.Finished = time.Now().UTC()
	return res, ctxErr
}

func sortAddrs(a []netip.Addr) { slices.SortFunc(a, netip.Addr.Compare) }

// probe connects to one port and, if it is open, identifies the service.
func (s *scanner) probe(ctx context.Context, a netip.Addr, port int) (Port, bool) {
	target := netip.AddrPortFrom(a, uint16(port)).String()
	if s.pace.Wait(ctx) != nil {
		return Port{}, false
	}
	dctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	conn, err := s.dial(dctx, "tcp", target)
	cancel()
	if err != nil {
		return Port{}, false
	}
	p := Port{Number: port, Proto: "tcp", State: StateOpen, Service: "unknown", Details: map[string]string{}}
	if h, ok := tcpServiceHints[port]; ok {
		p.Service = h
	}
	s.identify(ctx, conn, target, &p)
	if len(p.Details) == 0 {
		p.Details = nil
	}
	return p, true
}

// identify first listens (telnet, SSH and many DVRs speak first); a silent
// service is then asked in the protocols its port suggests, one fresh
// connection per question, until one answers in kind.
func (s *scanner) identify(ctx context.Context, conn net.Conn, target string, p *Port) {
	first := make([]byte, maxBanner)
	wait := min(s.opts.ReadTimeout, 800*time.Millisecond)
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	n, _ := conn.Read(first)
	first = first[:n]
	switch {
	case n > 0 && first[0] == telnetIAC:
		s.grabTelnet(conn, first, p)
		conn.Close()
		return
	case bytes.HasPrefix(first, []byte("SSH-")) || bytes.Contains(first, []byte("\nSSH-")):
		conn.Close()
		p.Service = "ssh"
		if v, err := parseSSHVersion(first); err == nil {
			p.Banner = "SSH-" + v.Proto + "-" + v.Software
			p.Details["ssh_protocol"] = v.Proto
			p.Details["ssh_software"] = v.Software
			if v.Comments != "" {
				p.Details["ssh_comments"] = v.Comments
			}
		} else {
			p.Banner = printable(first)
			p.Details["error"] = err.Error()
		}
		return
	case n > 0:
		conn.Close()
		// A Telnet server that negotiates nothing still shows its prompt.
		if p.Service == "telnet" && looksLikePrompt(first) {
			p.Plaintext = true
		}
		p.Banner = truncate(strings.TrimSpace(printable(first)), 256)
		return
	}
	conn.Close()
	for _, probe := range probeOrder(p.Number) {
		if ctx.Err() != nil {
			return
		}
		if s.tryProbe(ctx, probe, target, p) {
			return
		}
	}
}

func probeOrder(port int) []string {
	switch tcpServiceHints[port] {
	case "mqtt":
		return []string{"mqtt", "http"}
	case "mqtts":
		return []string{"tls-mqtt", "mqtt"}
	case "https":
		return []string{"tls-http", "http"}
	case "http", "cwmp":
		return []string{"http", "tls-http"}
	case "rtsp":
		return []string{"rtsp"}
	case "modbus":
		// Only the read-only Read Device Identification (modbus.go): a
		// write could move an actuator.
		return []string{"modbus"}
	}
	return []string{"tls-http", "http", "mqtt"}
}

func (s *scanner) tryProbe(ctx context.Context, probe, target string, p *Port) bool {
	// A follow-up connection is a packet to the device like any other:
	// --rate bounds it too.
	if s.pace.Wait(ctx) != nil {
		return false
	}
	dctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	conn, err := s.dial(dctx, "tcp", target)
	cancel()
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * s.opts.ReadTimeout))
	details := map[string]string{}
	if strings.HasPrefix(probe, "tls-") {
		// Devices on a private network almost never present a certificate
		// a scanner could verify (self-signed, expired, issued to an IP);
		// the scan reports the certificate instead of trusting it, and
		// sends nothing secret over the connection.
		tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, ServerName: serverName(target)})
		if err := tc.HandshakeContext(ctx); err != nil {
			return false
		}
		st := tc.ConnectionState()
		details["tls_version"] = tls.VersionName(st.Version)
		if len(st.PeerCertificates) > 0 {
			c := st.PeerCertificates[0]
			details["tls_subject"] = c.Subject.String()
			details["tls_issuer"] = c.Issuer.String()
			details["tls_not_after"] = c.NotAfter.UTC().Format(time.RFC3339)
			if time.Now().After(c.NotAfter) {
				details["tls_expired"] = "true"
			}
		}
		conn = tc
	}
	var ok bool
	switch probe {
	case "http", "tls-http", "rtsp":
		ok = s.grabHTTP(conn, target, probe, p, details)
	case "mqtt", "tls-mqtt":
		ok = s.grabMQTT(conn, probe == "tls-mqtt", p, details)
	case "modbus":
		ok = s.grabModbus(conn, p, details)
	}
	if ok {
		for k, v := range details {
			p.Details[k] = v
		}
	}
	return ok
}

func serverName(target string) string {
	host, _, _ := net.SplitHostPort(target)
	if _, err := netip.ParseAddr(host); err == nil {
		return ""
	}
	return host
}

func readCapped(conn net.Conn) []byte {
	b, _ := io.ReadAll(io.LimitReader(conn, maxBanner))
	return b
}

func (s *scanner) grabTelnet(conn net.Conn, first []byte, p *Port) {
	p.Service, p.Plaintext = "telnet", true
	var neg telnetNegotiation
	var text []byte
	buf := first
	deadline := time.Now().Add(s.opts.ReadTimeout)
	read := len(first)
	for {
		t, reply := neg.Feed(buf)
		text = append(text, t...)
		if len(reply) > 0 {
			_ = conn.SetWriteDeadline(time.Now().Add(s.opts.ReadTimeout))
			if _, err := conn.Write(reply); err != nil {
				break
			}
		}
		if looksLikePrompt(text) || read >= maxBanner || time.Now().After(deadline) {
			break
		}
		_ = conn.SetReadDeadline(deadline)
		b := make([]byte, maxBanner-read)
		n, err := conn.Read(b)
		read += n
		buf = b[:n]
		if err != nil && n == 0 {
			break
		}
	}
	p.Banner = truncate(strings.Join(strings.Fields(printable(text)), " "), 256)
	if len(neg.options) > 0 {
		p.Details["telnet_options"] = strings.Join(neg.options, ", ")
	}
	lines := strings.Split(strings.TrimRight(string(text), " \r\n"), "\n")
	if prompt := strings.TrimSpace(printable([]byte(lines[len(lines)-1]))); prompt != "" {
		p.Details["prompt"] = prompt
	}
}

func (s *scanner) grabHTTP(conn net.Conn, target, probe string, p *Port, details map[string]string) bool {
	var req string
	if probe == "rtsp" {
		req = "OPTIONS rtsp://" + target + "/ RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: fleetward-scan\r\n\r\n"
	} else {
		req = "GET / HTTP/1.0\r\nHost: " + target + "\r\nUser-Agent: fleetward-scan\r\nAccept: */*\r\nConnection: close\r\n\r\n"
	}
	if _, err := io.WriteString(conn, req); err != nil {
		return false
	}
	resp := readCapped(conn)
	info, err := parseHTTPResponse(resp)
	if err != nil {
		return false
	}
	// Go's TLS servers answer plain HTTP with this 400: it is HTTPS.
	if probe == "http" && bytes.Contains(resp, []byte("Client sent an HTTP request to an HTTPS server")) {
		return false
	}
	switch {
	case strings.HasPrefix(info.Proto, "RTSP/"):
		p.Service = "rtsp"
	case probe == "tls-http":
		p.Service = "https"
	default:
		p.Service = "http"
	}
	p.Plaintext = probe != "tls-http"
	details["status"] = strconv.Itoa(info.Status)
	parts := []string{info.Proto + " " + strconv.Itoa(info.Status)}
	if info.Server != "" {
		details["server"] = info.Server
		parts = append(parts, "server "+info.Server)
	}
	if info.Title != "" {
		details["title"] = info.Title
		parts = append(parts, "title "+strconv.Quote(info.Title))
	}
	if info.AuthScheme != "" {
		details["auth_scheme"] = info.AuthScheme
		parts = append(parts, "auth "+info.AuthScheme)
	}
	if info.Realm != "" {
		details["realm"] = info.Realm
		parts = append(parts, "realm "+strconv.Quote(info.Realm))
	}
	p.Banner = strings.Join(parts, ", ")
	return true
}

func (s *scanner) grabMQTT(conn net.Conn, overTLS bool, p *Port, details map[string]string) bool {
	id := make([]byte, 6)
	_, _ = rand.Read(id)
	if _, err := conn.Write(mqttConnect("fleetward-scan-" + hex.EncodeToString(id))); err != nil {
		return false
	}
	b := make([]byte, 4)
	if _, err := io.ReadFull(conn, b); err != nil {
		return false
	}
	ca, err := parseConnack(b)
	if err != nil {
		return false
	}
	if ca.ReturnCode == 0 {
		_, _ = conn.Write(mqttDisconnect)
	}
	p.Service = "mqtt"
	if overTLS {
		p.Service = "mqtts"
	}
	p.Plaintext = !overTLS
	details["connack_code"] = strconv.Itoa(int(ca.ReturnCode))
	if ca.ReturnCode == 0 {
		details["anonymous"] = "accepted"
		p.Banner = "MQTT 3.1.1, anonymous connect accepted"
	} else {
		details["anonymous"] = "refused"
		p.Banner = fmt.Sprintf("MQTT 3.1.1, anonymous connect refused: %s", connackCodes[ca.ReturnCode])
	}
	return true
}

// AnonymousMQTT reports whether the port is an MQTT broker that accepted a
// connection without credentials.
func (p Port) AnonymousMQTT() bool { return p.Details["anonymous"] == "accepted" }
