package demofleet

import (
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/fleetward/fleetward/internal/flow"
)

// C2Address is where the demo's infected device tries to reach its
// command server: an address of TEST-NET-3 (RFC 5737), which no real host
// has; the demo never sends anything to it, it only appears in records.
var C2Address = netip.MustParseAddr("203.0.113.50")

// InfectionFlows are the connection records a network sensor would export
// for a device that Mirai took over: from start, it scans for Telnet on
// random addresses of its /16 (23, and 2323 one time in ten, as Mirai's
// scanner does), most unanswered, and every 80 s retries its command
// server on TCP 50, which does not answer. The records go through the
// same flow rules as a real conn.log; only the traffic is simulated, like
// the rest of the demo fleet.
func InfectionFlows(src netip.Addr, start time.Time, d time.Duration, seed uint64) []flow.Conn {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var out []flow.Conn
	base := src.As4()
	for at := time.Duration(0); at < d; at += time.Duration(50+rng.IntN(100)) * time.Millisecond {
		dst := netip.AddrFrom4([4]byte{base[0], base[1], byte(rng.IntN(256)), byte(1 + rng.IntN(254))})
		port := 23
		if rng.IntN(10) == 0 {
			port = 2323
		}
		c := flow.Conn{Time: start.Add(at), OrigH: src, OrigP: 1024 + rng.IntN(60000), RespH: dst, RespP: port, Proto: "tcp",
			ConnState: "S0", OrigPkts: 1}
		if rng.IntN(50) == 0 { // a few hosts answer, and are refused
			c.ConnState, c.RespPkts = "REJ", 1
		}
		out = append(out, c)
	}
	for at := time.Duration(0); at < d; at += 80 * time.Second {
		for _, retry := range []time.Duration{0, 7 * time.Second, 16 * time.Second, 32 * time.Second} {
			out = append(out, flow.Conn{Time: start.Add(at + retry), OrigH: src, OrigP: 1024 + rng.IntN(60000), RespH: C2Address,
				RespP: 50, Proto: "tcp", ConnState: "S0", OrigPkts: 1})
		}
	}
	return out
}
