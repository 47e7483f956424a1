package bus

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/fleetward/fleetward/internal/apperr"
)

// startEmbedded starts an in-process NATS server with JetStream storing
// under cfg.Dir/nats. It has no network listener: only this process can
// reach it, through nats.InProcessServer. It returns the running server
// and a function that releases the store's lock after shutdown.
func startEmbedded(cfg Config, log *slog.Logger) (*server.Server, func(), error) {
	if cfg.Dir == "" {
		return nil, nil, apperr.InvalidField("dir", "is required for the embedded bus (or set a NATS URL)")
	}
	storeDir := filepath.Join(cfg.Dir, "nats")
	if err := os.MkdirAll(storeDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("embedded bus: create %s: %w", storeDir, err)
	}
	unlock, err := lockDir(storeDir)
	if err != nil {
		return nil, nil, err
	}
	opts := &server.Options{
		ServerName: "fleetward",
		DontListen: true,
		NoSigs:     true,
		JetStream:  true,
		StoreDir:   storeDir,
		SyncAlways: cfg.SyncAlways,
		// No system account: nothing outside this process can reach the
		// server, so there is nobody to monitor it through one.
		NoSystemAccount: true,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		unlock()
		return nil, nil, fmt.Errorf("embedded bus: configure NATS server: %w", err)
	}
	sl := &serverLog{log: log.With("component", "nats-server")}
	ns.SetLoggerV2(sl, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		ns.WaitForShutdown()
		unlock()
		return nil, nil, apperr.Errorf(apperr.Unavailable, "embedded NATS server did not start: %s", sl.lastError("no error reported"))
	}
	if !ns.JetStreamEnabled() {
		ns.Shutdown()
		ns.WaitForShutdown()
		unlock()
		return nil, nil, apperr.Errorf(apperr.Unavailable, "embedded NATS server could not start JetStream in %s: %s", storeDir, sl.lastError("no error reported"))
	}
	return ns, unlock, nil
}

// serverLog routes the embedded server's log to slog. Its notices (the
// start-up banner and the like) are debug-level for fleetward; warnings
// and errors stay what they are. The last error is kept for Open to report.
type serverLog struct {
	log  *slog.Logger
	mu   sync.Mutex
	last string
}

func (l *serverLog) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLog) Warnf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.remember(msg)
	l.log.Warn(msg)
}
func (l *serverLog) Fatalf(format string, v ...any) { l.Errorf(format, v...) }
func (l *serverLog) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.remember(msg)
	l.log.Error(msg)
}
func (l *serverLog) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLog) Tracef(string, ...any)          {}

func (l *serverLog) remember(msg string) {
	l.mu.Lock()
	l.last = msg
	l.mu.Unlock()
}

func (l *serverLog) lastError(otherwise string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == "" {
		return otherwise
	}
	return l.last
}

// redactURL drops credentials from a (comma-separated list of) NATS URLs
// so that it can be shown in an error.
func redactURL(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "(unparseable URL)"
			continue
		}
		u.User = nil
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}
