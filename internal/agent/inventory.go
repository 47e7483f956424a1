package agent

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Inventory is what a device reports about itself on devices/{id}/inventory,
// at start and whenever it changes.
type Inventory struct {
	DeviceID  string `json:"device_id"`
	Firmware  string `json:"firmware"`
	OSName    string `json:"os_name"`
	OSVersion string `json:"os_version"`
	Kernel    string `json:"kernel"`
	// ListeningPorts are the TCP sockets in LISTEN and the bound,
	// unconnected UDP sockets.
	ListeningPorts []Port `json:"listening_ports"`
	// ConfigDigest is the hex SHA-256 over the configuration files (see
	// ConfigDigest).
	ConfigDigest string    `json:"config_digest"`
	ConfigFiles  []string  `json:"config_files"`
	CollectedAt  time.Time `json:"collected_at"`
}

// ParseOSRelease reads an os-release file (KEY=value lines, values
// optionally quoted) into a map. Comments, blank lines and malformed lines
// are ignored.
func ParseOSRelease(r io.Reader) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			if uq, err := strconv.Unquote(`"` + v[1:len(v)-1] + `"`); err == nil {
				v = uq
			} else {
				v = v[1 : len(v)-1]
			}
		}
		out[k] = v
	}
	return out
}

// ConfigDigest is the hex SHA-256 of one line per file, in the order
// given: the file's own hex SHA-256 (or "missing" if it cannot be read),
// two spaces and its path, as sha256sum prints them. No files gives the
// digest of the empty input.
func ConfigDigest(files []string) string {
	h := sha256.New()
	for _, f := range files {
		sum := "missing"
		if data, err := os.ReadFile(f); err == nil {
			s := sha256.Sum256(data)
			sum = hex.EncodeToString(s[:])
		}
		fmt.Fprintf(h, "%s  %s\n", sum, f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// collector reads the device's state from /proc and /etc.
type collector struct {
	procRoot  string
	osRelease string
	firmware  string
	configs   []string
}

// inventory collects the device's inventory. Files that cannot be read
// leave their fields empty.
func (c collector) inventory(deviceID string, now time.Time) Inventory {
	inv := Inventory{DeviceID: deviceID, Firmware: c.firmware, ConfigFiles: c.configs, CollectedAt: now.UTC()}
	if f, err := os.Open(c.osRelease); err == nil {
		rel := ParseOSRelease(f)
		f.Close()
		inv.OSName = rel["NAME"]
		inv.OSVersion = rel["VERSION"]
		if inv.OSVersion == "" {
			inv.OSVersion = rel["VERSION_ID"]
		}
		if inv.Firmware == "" {
			inv.Firmware = rel["VERSION_ID"]
		}
	}
	if b, err := os.ReadFile(filepath.Join(c.procRoot, "sys/kernel/osrelease")); err == nil {
		inv.Kernel = strings.TrimSpace(string(b))
	} else {
		inv.Kernel = unameRelease()
	}
	inv.ListeningPorts = c.net().Listening
	if inv.ListeningPorts == nil {
		inv.ListeningPorts = []Port{}
	}
	inv.ConfigDigest = ConfigDigest(c.configs)
	return inv
}

// net reads the socket tables. Tables that cannot be opened (no IPv6, say)
// are left out.
func (c collector) net() NetState {
	read := func(names ...string) ([]Socket, int) {
		var all []Socket
		skipped := 0
		for _, n := range names {
			f, err := os.Open(filepath.Join(c.procRoot, "net", n))
			if err != nil {
				continue
			}
			s, sk, _ := ParseProcNetTCP(f)
			f.Close()
			all = append(all, s...)
			skipped += sk
		}
		return all, skipped
	}
	tcp, sk1 := read("tcp", "tcp6")
	udp, sk2 := read("udp", "udp6")
	st := netState(tcp, udp)
	st.Skipped = sk1 + sk2
	return st
}

// netDev reads /proc/net/dev.
func (c collector) netDev() (map[string]InterfaceCounters, int, error) {
	f, err := os.Open(filepath.Join(c.procRoot, "net", "dev"))
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	return ParseProcNetDev(f)
}
