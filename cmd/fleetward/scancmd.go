package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/scan"
)

func scanCommand() *cli.Command {
	return &cli.Command{
		Name:      "scan",
		Usage:     "discover devices and their exposed services on networks you are responsible for",
		ArgsUsage: "CIDR|HOST...",
		Description: `Tries the usual IoT TCP ports (telnet, SSH, HTTP(S), RTSP, MQTT, Modbus, TR-069, DVRs) on every
address of the targets, then identifies what answers: the telnet prompt, the SSH version, the
HTTP server, page title and login realm, the HTTPS certificate, and whether an MQTT broker lets
anonymous clients in. Services that carry data unencrypted are marked PLAINTEXT. On UDP it asks
CoAP for /.well-known/core (5683), SSDP for its services (M-SEARCH to 1900) and BACnet/IP who is
there (Who-Is to 47808); a UDP port is reported only when it answered (two retries). Every
connection attempt, identification connection and datagram counts against --rate. With --ports
and no --udp-ports, no UDP port is probed. A Modbus/TCP device (502) is asked only the read-only
Read Device Identification (function 43/14); nothing is ever written to it. Banners are matched
against a table of fingerprints for a vendor, product, version and OS guess per port and host.

Only private (RFC 1918, fc00::/7), loopback and link-local addresses are scanned; any other
address is refused before anything is sent, unless an --allow range you are authorised to scan
covers it.

--credentials default|FILE also tries logins (off by default): telnet, SSH password and
keyboard-interactive, HTTP Basic/Digest on a login realm, MQTT username/password. One connection
at a time per host, at most --credential-rate attempts a minute and --credential-cap in all,
stopping at the first success per service and at signs of lockout. Passwords are never printed:
a finding shows the username, the list entry and a hint (first and last character).

With --record the scan is kept: its start and end (who ran it, targets, options, summary) are
ledger entries in --data/--database (the server's, also while it runs), its results update the
inventory (unknown addresses become unmanaged devices) and the exposure table, and the fleet is
audited (findings and risk scores on the dashboard). Scans the server runs itself (POST
/api/v1/scans, serve --scan-target) are always recorded.

  fleetward scan 192.168.1.0/24
  fleetward scan 192.168.1.0/24 --record --data /var/lib/fleetward
  fleetward scan 10.0.0.5 cam.local --ports 80,443,554 --json
  fleetward scan 10.0.0.0/24 --ports 502 --udp-ports 47808`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "ports", Usage: "TCP ports and ranges, e.g. 22,80,8000-8100 (default: the IoT port list)"},
			&cli.StringFlag{Name: "udp-ports", Usage: "UDP ports to probe, of 5683 (CoAP), 1900 (SSDP), 47808 (BACnet), or none (default: all three unless --ports is given)"},
			&cli.FloatFlag{Name: "rate", Value: 1000, Usage: "packets per second: connection attempts, identification connections and UDP datagrams"},
			&cli.IntFlag{Name: "concurrency", Value: 512, Usage: "connection attempts in flight"},
			&cli.DurationFlag{Name: "timeout", Value: scanDefaultTimeout, Usage: "timeout of one connection attempt"},
			&cli.StringSliceFlag{Name: "allow", Usage: "a public CIDR you are authorised to scan (repeatable)"},
			&cli.BoolFlag{Name: "json", Usage: "print the results as JSON on standard output"},
			&cli.StringFlag{Name: "credentials", Value: "none", Usage: "login attempts on telnet, SSH, HTTP auth and MQTT: none, default (the built-in Mirai and vendor default list) or a FILE of user:password lines; only on devices you are authorised to test"},
			&cli.FloatFlag{Name: "credential-rate", Value: scan.DefaultCredentialRate, Usage: "login attempts per host per minute"},
			&cli.IntFlag{Name: "credential-cap", Value: scan.DefaultCredentialCap, Usage: "most login attempts per host"},
			&cli.BoolFlag{Name: "record", Usage: "record the scan in the ledger of --data/--database (who ran it, what it found), merge it into the inventory (unknown addresses become unmanaged devices) and audit the fleet"},
		}, storageFlags()...),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.NArg() == 0 {
				return fmt.Errorf("scan: give at least one target (CIDR, address or host name)")
			}
			opts := scan.Options{Rate: cmd.Float("rate"), Concurrency: cmd.Int("concurrency"), Timeout: cmd.Duration("timeout")}
			if opts.Rate <= 0 || opts.Concurrency <= 0 || opts.Timeout <= 0 {
				return fmt.Errorf("scan: --rate, --concurrency and --timeout must be positive")
			}
			if s := cmd.String("ports"); s != "" {
				ports, err := scan.ParsePorts(s)
				if err != nil {
					return fmt.Errorf("scan: --ports: %w", err)
				}
				opts.Ports = ports
			}
			if s := cmd.String("udp-ports"); s != "" && s != "none" {
				ports, err := scan.ParsePorts(s)
				if err != nil {
					return fmt.Errorf("scan: --udp-ports: %w", err)
				}
				opts.UDPPorts = ports
				if len(opts.Ports) == 0 {
					opts.Ports = scan.DefaultTCPPorts
				}
			} else if s == "none" && len(opts.Ports) == 0 {
				opts.Ports = scan.DefaultTCPPorts
			}
			if err := opts.Validate(); err != nil {
				return fmt.Errorf("scan: %w", err)
			}
			for _, a := range cmd.StringSlice("allow") {
				p, err := netip.ParsePrefix(a)
				if err != nil {
					return fmt.Errorf("scan: --allow %q: not a CIDR prefix: %w", a, err)
				}
				opts.AllowedRanges = append(opts.AllowedRanges, p.Masked())
			}
			addrs, err := scan.ParseTargets(ctx, cmd.Args().Slice(), nil)
			if err != nil {
				return fmt.Errorf("scan: %w", err)
			}
			if err := scan.CheckScope(addrs, opts.AllowedRanges); err != nil {
				return fmt.Errorf("scan: %w", err)
			}
			switch c := cmd.String("credentials"); c {
			case "", "none":
			case "default":
				opts.Credentials = scan.DefaultCredentials()
			default:
				list, err := scan.LoadCredentialFile(c)
				if err != nil {
					return fmt.Errorf("scan: --credentials: %w", err)
				}
				opts.Credentials = list
			}
			opts.CredentialRate, opts.CredentialCap = cmd.Float("credential-rate"), cmd.Int("credential-cap")
			if opts.CredentialRate <= 0 || opts.CredentialCap <= 0 {
				return fmt.Errorf("scan: --credential-rate and --credential-cap must be positive")
			}
			opts.CredentialProgress = func(target, service string, attempt, planned int) {
				fmt.Fprintf(os.Stderr, "credential audit %s (%s): attempt %d of at most %d\n", target, service, attempt, planned)
			}
			var recording *app.ScanRecording
			if cmd.Bool("record") {
				core, err := app.OpenCore(ctx, coreConfig(cmd))
				if err != nil {
					return fmt.Errorf("scan --record: %w", err)
				}
				defer core.Close()
				ctx = cliContext(ctx)
				if recording, err = core.StartScanRecording(ctx, cmd.Args().Slice(), opts); err != nil {
					return fmt.Errorf("scan --record: %w", err)
				}
			}
			opts.Progress = progressPrinter("scanned")
			res, err := scan.Scan(ctx, addrs, opts)
			clearProgress()
			if recording != nil {
				rec, rerr := recording.Finish(ctx, addrs, res, err)
				if rerr != nil && err == nil {
					return fmt.Errorf("scan --record: %w", rerr)
				}
				fmt.Fprintf(os.Stderr, "recorded as %s by %s: %d unmanaged hosts, %d new devices\n", rec.ID, rec.Actor, rec.Summary.Unmanaged, rec.Summary.NewDevices)
			} else if !cmd.Bool("json") {
				fmt.Fprintln(os.Stderr, "not recorded: add --record to keep it in the ledger and merge it into the inventory")
			}
			if err != nil && res == nil {
				return fmt.Errorf("scan: %w", err)
			}
			if cmd.Bool("json") {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				_ = enc.Encode(res)
			} else {
				printScan(os.Stdout, res)
			}
			if err != nil {
				return fmt.Errorf("scan interrupted, results are partial: %w", err)
			}
			return nil
		},
	}
}

const scanDefaultTimeout = 1500 * time.Millisecond

// printScan writes one table per host with open ports.
func printScan(w io.Writer, res *scan.Result) {
	open := 0
	for _, h := range res.Hosts {
		open += len(h.Ports)
	}
	fmt.Fprintf(w, "scanned %d addresses in %s: %d hosts, %d open ports\n", res.Addresses,
		res.Finished.Sub(res.Started).Round(time.Millisecond), len(res.Hosts), open)
	for _, h := range res.Hosts {
		fmt.Fprintf(w, "\n%s\n", h.Addr)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  PORT\tSERVICE\t\tBANNER")
		for _, p := range h.Ports {
			mark := ""
			if p.Plaintext {
				mark = "PLAINTEXT"
			}
			banner := p.Banner // an MQTT banner already says whether anonymous clients get in
			if len(banner) > 80 {
				banner = banner[:77] + "..."
			}
			fmt.Fprintf(tw, "  %d/%s\t%s\t%s\t%s\n", p.Number, p.Proto, p.Service, mark, banner)
			if c := p.Credentials; c != nil {
				fmt.Fprintf(tw, "  \t\t\t%s\n", credentialLine(c))
			}
		}
		tw.Flush()
	}
	if len(res.NotProbed) > 0 {
		var ps []string
		for _, p := range res.NotProbed {
			ps = append(ps, fmt.Sprintf("%d/%s (%s)", p.Number, p.Proto, p.Service))
		}
		fmt.Fprintf(w, "\nnot probed: %s\n", strings.Join(ps, ", "))
	}
}

// credentialLine summarises a credential audit without the password.
func credentialLine(c *scan.CredentialFinding) string {
	if c.Works {
		return fmt.Sprintf("WEAK CREDENTIAL: %s / %s (%s list entry %d, %d attempts)", c.Username, c.PasswordHint, c.Source, c.Entry, c.Attempts)
	}
	s := fmt.Sprintf("credentials: none of %d tried worked", c.Attempts)
	if c.Stopped != "" {
		s += " (stopped: " + c.Stopped + ")"
	}
	return s
}
