package agent

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

const procNetTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12346 1 0000000000000000 100 0 0 10 0
   2: 0F02000A:0016 0102A8C0:D431 01 00000000:00000000 02:000AFC2E 00000000     0        0 12347 4 0000000000000000 20 4 30 10 -1
   3: 0F02000A:9C40 08080808:01BB 01 00000000:00000000 00:00000000 00000000  1000        0 12348 1 0000000000000000 20 4 30 10 -1
   4: 0F02000A:9C41 08080808:01BB 06 00000000:00000000 00:00000000 00000000  1000        0 0 1 0000000000000000 20 4 30 10 -1
`

const procNetTCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1111 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   106        0 7205 1 000000000e14828d 100 0 0 10 0
   1: 000080FE00000000FF2BC5021B0AA2FE:0016 B80D0120000000000000000001000000:E2A4 01 00000000:00000000 00:00000000 00000000     0        0 7206 1 000000000e14828d 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:0050 0000000000000000FFFF00000200007F:A000 01 00000000:00000000 00:00000000 00000000     0        0 7207 1 000000000e14828d 100 0 0 10 0
`

const procNetUDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 2001 2 0000000000000000 0
  101: 0F02000A:A1B2 08080808:0035 01 00000000:00000000 00:00000000 00000000     0        0 2002 2 0000000000000000 0
`

func TestParseProcNetTCPReadsLittleEndianIPv4(t *testing.T) {
	socks, skipped, err := ParseProcNetTCP(strings.NewReader(procNetTCP))
	if err != nil || skipped != 0 || len(socks) != 5 {
		t.Fatalf("got %d sockets, %d skipped, err %v; want 5, 0, nil", len(socks), skipped, err)
	}
	want := Socket{Local: netip.MustParseAddrPort("127.0.0.1:8080"), Remote: netip.MustParseAddrPort("0.0.0.0:0"), State: tcpListen}
	if socks[0] != want {
		t.Errorf("first socket = %+v, want %+v", socks[0], want)
	}
	want = Socket{Local: netip.MustParseAddrPort("10.0.2.15:22"), Remote: netip.MustParseAddrPort("192.168.2.1:54321"), State: tcpEstablished}
	if socks[2] != want {
		t.Errorf("established socket = %+v, want %+v", socks[2], want)
	}
}

func TestParseProcNetTCPReadsIPv6WordByWord(t *testing.T) {
	socks, skipped, err := ParseProcNetTCP(strings.NewReader(procNetTCP6))
	if err != nil || skipped != 0 || len(socks) != 3 {
		t.Fatalf("got %d sockets, %d skipped, err %v", len(socks), skipped, err)
	}
	tests := []struct{ local, remote string }{
		{"[::1]:4369", "[::]:0"},
		{"[fe80::2c5:2bff:fea2:a1b]:22", "[2001:db8::1]:58020"},
		{"[::ffff:127.0.0.1]:80", "[::ffff:127.0.0.2]:40960"},
	}
	for i, tt := range tests {
		if got := socks[i].Local.String(); got != tt.local {
			t.Errorf("socket %d local = %s, want %s", i, got, tt.local)
		}
		if got := socks[i].Remote.String(); got != tt.remote {
			t.Errorf("socket %d remote = %s, want %s", i, got, tt.remote)
		}
	}
}

func TestMalformedSocketLinesAreSkippedAndCounted(t *testing.T) {
	in := procNetTCP + `   5: 0100007F:1F90 00000000:0000
   6: ZZ00007F:1F90 00000000:0000 0A
   7: 0100007F:1F90 00000000000000000000000000000000:0000 0A
   8: 0100007F:1F9 00000000:0000 0A
   9 0100007F:1F90 00000000:0000 0A
  10: 0100007F:1F90 00000000:0000 XYZ
  11: 0100007F 00000000:0000 0A
garbage
`
	socks, skipped, err := ParseProcNetTCP(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(socks) != 5 || skipped != 8 {
		t.Errorf("got %d sockets and %d skipped, want 5 and 8", len(socks), skipped)
	}
}

func TestNetStateFindsListeningPortsConnectionsAndRemotes(t *testing.T) {
	tcp4, _, _ := ParseProcNetTCP(strings.NewReader(procNetTCP))
	tcp6, _, _ := ParseProcNetTCP(strings.NewReader(procNetTCP6))
	udp, _, _ := ParseProcNetTCP(strings.NewReader(procNetUDP))
	st := netState(append(tcp4, tcp6...), udp)
	wantPorts := []Port{
		{"tcp", "0.0.0.0", 22},
		{"tcp", "::1", 4369},
		{"tcp", "127.0.0.1", 8080},
		{"udp", "0.0.0.0", 68},
	}
	if !reflect.DeepEqual(st.Listening, wantPorts) {
		t.Errorf("listening = %v, want %v", st.Listening, wantPorts)
	}
	if st.Established != 4 {
		t.Errorf("established = %d, want 4 (two IPv4, two IPv6; TIME_WAIT is not)", st.Established)
	}
	wantRemotes := []string{"127.0.0.2", "192.168.2.1", "2001:db8::1", "8.8.8.8"}
	if !reflect.DeepEqual(st.Remotes, wantRemotes) {
		t.Errorf("remotes = %v, want %v (distinct, IPv4-mapped shown as IPv4)", st.Remotes, wantRemotes)
	}
}

const procNetDev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 72632250  143077    0    0    0     0          0         0 72632250  143077    0    0    0     0       0          0
  eth0: 1000000     2000    1    0    0     0          0         5   300000     1500    0    0    0     0       0          0
wlan0:500 5 0 0 0 0 0 0 700 7 0 0 0 0 0 0
`

func TestParseProcNetDevReadsReceiveAndTransmit(t *testing.T) {
	ifaces, skipped, err := ParseProcNetDev(strings.NewReader(procNetDev))
	if err != nil || skipped != 0 {
		t.Fatalf("skipped %d, err %v", skipped, err)
	}
	if got, want := ifaces["eth0"], (InterfaceCounters{RxBytes: 1000000, RxPackets: 2000, TxBytes: 300000, TxPackets: 1500}); got != want {
		t.Errorf("eth0 = %+v, want %+v", got, want)
	}
	if got, want := ifaces["wlan0"], (InterfaceCounters{RxBytes: 500, RxPackets: 5, TxBytes: 700, TxPackets: 7}); got != want {
		t.Errorf("wlan0 (no space after the colon) = %+v, want %+v", got, want)
	}
	if got, want := sumCounters(ifaces), (Counters{BytesIn: 1000500, BytesOut: 300700, PacketsIn: 2005, PacketsOut: 1507}); got != want {
		t.Errorf("sum without lo = %+v, want %+v", got, want)
	}
}

func TestMalformedInterfaceLinesAreSkippedAndCounted(t *testing.T) {
	in := procNetDev + "  eth1: 1 2 3\n  eth2: a b c d e f g h i j k l m n o p\n: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\nnonsense\n"
	ifaces, skipped, err := ParseProcNetDev(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ifaces) != 3 || skipped != 4 {
		t.Errorf("got %d interfaces and %d skipped, want 3 and 4", len(ifaces), skipped)
	}
}

func TestDeltaCountsAResetCounterFromZero(t *testing.T) {
	got := delta(Counters{BytesIn: 100, BytesOut: 5, PacketsIn: 10, PacketsOut: 1}, Counters{BytesIn: 40, BytesOut: 50, PacketsIn: 4, PacketsOut: 1})
	want := Counters{BytesIn: 60, BytesOut: 5, PacketsIn: 6, PacketsOut: 0}
	if got != want {
		t.Errorf("delta = %+v, want %+v", got, want)
	}
}

func TestOSReleaseValuesAreUnquoted(t *testing.T) {
	rel := ParseOSRelease(strings.NewReader("# comment\nNAME=\"Debian GNU/Linux\"\nVERSION_ID='12'\nID=debian\nbroken line\nVERSION=\"12 (bookworm)\"\n"))
	want := map[string]string{"NAME": "Debian GNU/Linux", "VERSION_ID": "12", "ID": "debian", "VERSION": "12 (bookworm)"}
	if !reflect.DeepEqual(rel, want) {
		t.Errorf("os-release = %v, want %v", rel, want)
	}
}

func TestConfigDigestOfNoFilesIsTheDigestOfNothing(t *testing.T) {
	if got, want := ConfigDigest(nil), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"; got != want {
		t.Errorf("digest of no files = %s, want %s", got, want)
	}
}

func FuzzParseProcNetTCP(f *testing.F) {
	f.Add(procNetTCP)
	f.Add(procNetTCP6)
	f.Add(procNetUDP)
	f.Add("0: 0100007F:1F90 00000000:0000 0A")
	f.Fuzz(func(t *testing.T, in string) {
		socks, skipped, err := ParseProcNetTCP(strings.NewReader(in))
		if err != nil {
			return
		}
		if skipped < 0 || len(socks) > strings.Count(in, "\n")+1 {
			t.Fatalf("%d sockets, %d skipped from %d lines", len(socks), skipped, strings.Count(in, "\n")+1)
		}
		for _, s := range socks {
			if s.Local.Addr().Is4() != s.Remote.Addr().Is4() {
				t.Fatalf("mixed address families in %+v", s)
			}
		}
		_ = netState(socks, socks)
	})
}

func FuzzParseProcNetDev(f *testing.F) {
	f.Add(procNetDev)
	f.Add("eth0: 1 2 3")
	f.Fuzz(func(t *testing.T, in string) {
		ifaces, skipped, err := ParseProcNetDev(strings.NewReader(in))
		if err != nil {
			return
		}
		if skipped < 0 || len(ifaces) > strings.Count(in, "\n")+1 {
			t.Fatalf("%d interfaces, %d skipped", len(ifaces), skipped)
		}
		_ = sumCounters(ifaces)
	})
}
