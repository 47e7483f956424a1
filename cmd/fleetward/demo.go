package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/auth"
	"github.com/fleetward/fleetward/internal/demofleet"
	"github.com/fleetward/fleetward/internal/inventory"
	"github.com/fleetward/fleetward/internal/sim"
)

func demoCommand() *cli.Command {
	flags := serverFlags()
	for _, f := range flags {
		if sf, ok := f.(*cli.StringFlag); ok && sf.Name == "data" {
			sf.Value = ""
			sf.Usage = "data directory; must be new or empty (default: a fresh temporary directory)"
		}
	}
	flags = append(flags,
		&cli.IntFlag{Name: "devices", Value: 250, Usage: "size of the simulated fleet"},
		&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed of the simulated fleet (same seed, same fleet)"},
		&cli.BoolFlag{Name: "no-simulation", Usage: "do not connect the fleet: no device enrols over EST or reports over MQTT"},
		&cli.BoolFlag{Name: "insecure-demo-login", Usage: "let the demo admin log in WITHOUT a second factor (every page says so)"},
	)
	return &cli.Command{
		Name:  "demo",
		Usage: "run a server with a fresh data directory, a demo administrator and a simulated fleet",
		Description: `Starts 'serve' on a fresh data directory, creates the administrator "admin" with a
generated password and an enrolled TOTP authenticator (printed, with the secret to load into
an authenticator app or 'oathtool --totp -b SECRET'), seeds a realistic fleet across several
sites, and runs until interrupted (Ctrl-C). Every active device of the fleet is then simulated in
the same process: it makes its own key, enrols over EST with its own one-time token and reports
over its own mutual-TLS connection to the broker (127.0.0.1:8883 unless --mqtt says otherwise),
so the dashboard shows live sessions, certificates and traffic (--no-simulation to skip).

Demos can run side by side on one host: when another program (another demo) holds the
dashboard's or the broker's default port, the demo takes a free port instead and prints where it
listens; its weak devices take a /28 of 127.0.0.0/24 no other demo holds (127.0.0.16/28 first).
Addresses given with --http or --mqtt are used as given.`,
		Flags: flags,
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if n := cmd.Int("devices"); n < 0 || n > 1_000_000 {
				return fmt.Errorf("--devices %d: must be from 0 to 1000000", n)
			}
			cfg := serverConfig(cmd)
			cfg.InsecureDemoLogin = cmd.Bool("insecure-demo-login")
			if !cmd.IsSet("est-rate") {
				// The simulated fleet enrols from one address.
				cfg.ESTRatePerMinute = 60000
			}
			if !cmd.IsSet("mqtt") {
				// The demo listens on loopback only, like its dashboard.
				cfg.MQTTAddr = "127.0.0.1:8883"
			}
			if !cmd.IsSet("mqtt-connect-rate") {
				cfg.MQTT.ConnectAttemptsPerMinute = 100000
			}
			if cfg.DataDir == "" || cfg.DataDir == "fleetward-data" {
				dir, err := os.MkdirTemp("", "fleetward-demo-")
				if err != nil {
					return err
				}
				cfg.DataDir = dir
			} else if err := requireEmptyDir(cfg.DataDir); err != nil {
				return err
			}
			s, err := startDemoServer(ctx, cfg, !cmd.IsSet("http"), !cmd.IsSet("mqtt"))
			if err != nil {
				return err
			}
			token, err := seedDemo(cliContext(ctx), s, cmd.Int("devices"), cmd.Int64("seed"), cfg.InsecureDemoLogin)
			if err != nil {
				s.Stop()
				return err
			}
			lab, infected, err := scanDemoWeakDevices(cliContext(ctx), s)
			if err != nil {
				s.Stop()
				return err
			}
			defer lab.Close()
			if infected != "" {
				dctx := actor.With(ctx, actor.Actor{Name: "system:detect"})
				if err := detectDemoInfection(dctx, s, infected); err != nil {
					slog.Warn("demo infection (packet sensor)", "err", err)
				}
				if err := injectDemoInfection(dctx, s, infected); err != nil {
					slog.Warn("demo infection (flow sensor)", "err", err)
				}
			}
			if _, err := s.Inventory.CreateDevice(cliContext(ctx), demofleet.KEVRouter()); err != nil {
				slog.Warn("demo router", "err", err)
			}
			for name, b := range demofleet.Advisories() {
				if _, err := s.ImportAdvisories(cliContext(ctx), name, bytes.NewReader(b)); err != nil {
					slog.Warn("demo advisories", "file", name, "err", err)
				}
			}
			if rep, err := s.Audit(cliContext(ctx)); err == nil {
				fmt.Printf("  audit       %d findings (%d critical, %d known exploited or proven), fleet risk %.0f: %s/findings\n",
					rep.Summary.Open, rep.Summary.BySeverity["critical"], rep.Summary.Exploited, rep.FleetRisk, s.URL)
			}
			if !cmd.Bool("no-simulation") && s.Broker != nil {
				go connectDemoFleet(ctx, s, token)
			}
			<-ctx.Done()
			slog.Info("shutting down the demo", "data", cfg.DataDir)
			return s.Stop()
		},
	}
}

// startDemoServer starts the demo's server. A default listener (the
// dashboard on 127.0.0.1:8443, the broker on 127.0.0.1:8883) that another
// program holds, such as a second demo, moves to a free port of the same
// host, so that demos can run side by side; movableHTTP and movableMQTT
// are false for addresses given with --http and --mqtt, which are used as
// given. When a default port is taken between the look and the listen (two
// demos starting at the same moment), the start is retried on free ports,
// in the same data directory: it is the demo's own.
func startDemoServer(ctx context.Context, cfg app.Config, movableHTTP, movableMQTT bool) (*app.Server, error) {
	broker := cfg.MQTTAddr != ""
	if movableHTTP && portTaken(cfg.HTTPAddr) {
		slog.Info("the demo's default dashboard port is taken (another demo?): listening on a free port", "addr", cfg.HTTPAddr)
		cfg.HTTPAddr = anyPort(cfg.HTTPAddr)
	}
	if movableMQTT && broker && portTaken(cfg.MQTTAddr) {
		slog.Info("the demo's default broker port is taken (another demo?): listening on a free port", "addr", cfg.MQTTAddr)
		cfg.MQTTAddr = anyPort(cfg.MQTTAddr)
	}
	s, err := app.Start(ctx, cfg)
	// With an address from a flag, that address may be the one taken:
	// moving the others would not help.
	if err == nil || !errors.Is(err, syscall.EADDRINUSE) || !movableHTTP || (broker && !movableMQTT) {
		return s, err
	}
	slog.Info("a default demo port was taken as the demo started: listening on free ports", "err", err)
	cfg.HTTPAddr = anyPort(cfg.HTTPAddr)
	if broker {
		cfg.MQTTAddr = anyPort(cfg.MQTTAddr)
	}
	return app.Start(ctx, cfg)
}

// portTaken reports whether another socket listens on addr.
func portTaken(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		ln.Close()
	}
	return errors.Is(err, syscall.EADDRINUSE)
}

// anyPort is addr's host with port 0, which a listener turns into a free
// port.
func anyPort(addr string) string {
	host, _, _ := net.SplitHostPort(addr)
	return net.JoinHostPort(host, "0")
}

func requireEmptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("--data: %w", err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("--data %s: the demo needs a new or empty directory (use 'fleetward serve' for existing data)", dir)
	}
	return nil
}

// seedDemo creates the demo administrator and fleet and prints how to log in.
func seedDemo(ctx context.Context, s *app.Server, devices int, seed int64, insecure bool) (string, error) {
	password := rand.Text()[:20]
	if _, err := s.Auth.CreateOperator(ctx, "admin", password, auth.RoleAdmin); err != nil {
		return "", fmt.Errorf("demo admin: %w", err)
	}
	var enrol auth.Enrollment
	if !insecure {
		var err error
		if enrol, err = s.Auth.EnrollTOTP(ctx, "admin"); err != nil {
			return "", fmt.Errorf("demo admin TOTP: %w", err)
		}
	}
	token, _, err := s.Auth.CreateToken(ctx, "demo", auth.RoleAdmin, nil, 7*24*time.Hour)
	if err != nil {
		return "", fmt.Errorf("demo token: %w", err)
	}
	for _, site := range demofleet.Sites() {
		if _, err := s.Inventory.CreateSite(ctx, site); err != nil {
			return "", fmt.Errorf("demo site %s: %w", site.ID, err)
		}
	}
	fleet := demofleet.Generate(devices, seed, time.Now())
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(json.NewEncoder(pw).Encode(fleet)) }()
	progress := progressPrinter("imported")
	res, err := s.Inventory.ImportDevices(ctx, "json", pr, inventory.ImportOptions{
		Progress: func(p inventory.ImportProgress) { progress(uint64(p.Done), uint64(len(fleet))) },
	})
	clearProgress()
	if err != nil {
		return "", fmt.Errorf("demo fleet: %w", err)
	}
	fmt.Printf(`
fleetward demo is running
  dashboard   %s
  user        admin
  password    %s
`, s.URL, password)
	if insecure {
		fmt.Println("  MFA         DISABLED (--insecure-demo-login): not for real use")
	} else {
		fmt.Printf("  TOTP secret %s\n              (oathtool --totp -b %s, or scan %s)\n", enrol.Secret, enrol.Secret, enrol.OTPAuthURL)
		fmt.Printf("  recovery    %s\n", enrol.RecoveryCodes[0])
	}
	fmt.Printf(`  API token   %s
  server cert %s (trust the CA in %s)
  data        %s
  fleet       %d devices imported across %d sites
Try: curl --cacert %s/tls/ca.crt -H "Authorization: Bearer %s" %s/api/v1/stats
Press Ctrl-C to stop.
`, token, s.CertFingerprint, s.Config.DataDir+"/tls/ca.crt", s.Config.DataDir, res.Created+res.Updated, len(demofleet.Sites()),
		s.Config.DataDir, token, s.URL)
	return token, nil
}

// connectDemoFleet enrols every active device of the demo fleet over EST
// and connects it to the broker through the simulator, as a real fleet
// would, and says so once they are in.
func connectDemoFleet(ctx context.Context, s *app.Server, token string) {
	var devices []sim.Device
	f := inventory.Filter{Statuses: []string{inventory.StatusActive}, Limit: inventory.MaxLimit}
	for {
		page, err := s.Inventory.ListDevices(ctx, f)
		if err != nil {
			slog.Error("demo fleet: list devices", "err", err)
			return
		}
		for _, d := range page.Devices {
			devices = append(devices, sim.ForClass(d.ID, d.Name, d.Class, d.FirmwareVersion, d.OS, d.OSVersion))
		}
		if page.NextCursor == "" {
			break
		}
		f.Cursor = page.NextCursor
	}
	pem, err := os.ReadFile(filepath.Join(s.Config.DataDir, "tls", "ca.crt"))
	if err != nil {
		slog.Error("demo fleet: CA certificate", "err", err)
		return
	}
	_, port, _ := net.SplitHostPort(s.MQTTAddr())
	var once sync.Once
	start := time.Now()
	sm, err := sim.New(sim.Config{
		Server: s.URL, MQTTAddr: net.JoinHostPort("127.0.0.1", port), Token: token, CAPEM: pem,
		Devices: devices, Concurrency: 8,
		Progress: func(st sim.Stats) {
			if st.Enrolled+int64(st.EnrolFailures) == int64(st.Devices) {
				once.Do(func() {
					fmt.Printf("  devices     %d enrolled over EST in %s and connected to the broker (mTLS, port %s); %d failed\n",
						st.Enrolled, time.Since(start).Round(100*time.Millisecond), port, st.EnrolFailures)
				})
			}
		},
		Log: slog.Default(),
	})
	if err != nil {
		slog.Error("demo fleet: simulator", "err", err)
		return
	}
	if err := sm.Run(ctx); err != nil && ctx.Err() == nil {
		slog.Error("demo fleet: simulator", "err", err)
	}
}
