package scan

import (
	"bytes"
	"strings"
	"testing"
)

func TestTelnetNegotiation(t *testing.T) {
	tests := []struct {
		name    string
		chunks  [][]byte
		text    string
		reply   []byte
		options string
	}{
		{"DO and WILL are refused", [][]byte{{255, 253, 1, 255, 251, 3, 'l', 'o', 'g', 'i', 'n', ':', ' '}}, "login: ", []byte{255, 252, 1, 255, 254, 3}, "DO ECHO, WILL SGA"},
		{"DONT and WONT get no answer", [][]byte{{255, 254, 1, 255, 252, 3, 'x'}}, "x", nil, "DONT ECHO, WONT SGA"},
		{"a command split across reads", [][]byte{{'a', 255}, {253}, {24, 'b'}}, "ab", []byte{255, 252, 24}, "DO TTYPE"},
		{"IAC IAC is a data byte", [][]byte{{'a', 255, 255, 'b'}}, "a\xffb", nil, ""},
		{"subnegotiation is skipped", [][]byte{{255, 250, 24, 1, 255, 240, 'o', 'k'}}, "ok", nil, ""},
		{"IAC inside subnegotiation that is not SE stays in it", [][]byte{{255, 250, 24, 255, 1, 'z', 255, 240, 'k'}}, "k", nil, ""},
		{"a truncated command is held, not lost", [][]byte{{'a', 255, 253}}, "a", nil, ""},
		{"NOP and GA are dropped", [][]byte{{255, 241, 'a', 255, 249}}, "a", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n telnetNegotiation
			var text, reply []byte
			for _, c := range tt.chunks {
				x, r := n.Feed(c)
				text, reply = append(text, x...), append(reply, r...)
			}
			if string(text) != tt.text || !bytes.Equal(reply, tt.reply) || strings.Join(n.options, ", ") != tt.options {
				t.Errorf("text %q reply %v options %q; want %q %v %q", text, reply, strings.Join(n.options, ", "), tt.text, tt.reply, tt.options)
			}
		})
	}
}

func FuzzTelnetNegotiation(f *testing.F) {
	f.Add([]byte{255, 253, 1, 255, 251, 3, 'l', 'o', 'g', 'i', 'n', ':'})
	f.Add([]byte{255, 250, 24, 255})
	f.Add([]byte{255, 255, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		var n telnetNegotiation
		text, reply := n.Feed(b)
		if len(text) > len(b) {
			t.Fatalf("text longer than input")
		}
		if len(reply)%3 != 0 {
			t.Fatalf("reply %v is not whole commands", reply)
		}
		for i := 0; i < len(reply); i += 3 {
			if reply[i] != telnetIAC || (reply[i+1] != telnetWONT && reply[i+1] != telnetDONT) {
				t.Fatalf("reply %v: only WONT and DONT may be sent", reply)
			}
		}
		_ = looksLikePrompt(text)
	})
}

func TestParseSSHVersion(t *testing.T) {
	tests := []struct {
		in                   string
		proto, soft, comment string
		err                  string
	}{
		{"SSH-2.0-dropbear_2022.83\r\n", "2.0", "dropbear_2022.83", "", ""},
		{"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", "2.0", "OpenSSH_9.2p1", "Debian-2", ""},
		{"welcome\r\nSSH-1.99-Cisco-1.25\r\n", "1.99", "Cisco-1.25", "", ""},
		{"SSH-2.0-\r\n", "", "", "", "no software version"},
		{"SSH-\r\n", "", "", "", "no protocol version"},
		{"HTTP/1.0 200 OK\r\n", "", "", "", "no ssh identification line"},
		{"SSH-2.0-" + strings.Repeat("x", 300), "", "", "", "longer than 255"},
		{"", "", "", "", "no ssh identification line"},
	}
	for _, tt := range tests {
		v, err := parseSSHVersion([]byte(tt.in))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseSSHVersion(%q) err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || v.Proto != tt.proto || v.Software != tt.soft || v.Comments != tt.comment {
			t.Errorf("parseSSHVersion(%q) = %+v, %v", tt.in, v, err)
		}
	}
}

func FuzzParseSSHVersion(f *testing.F) {
	f.Add([]byte("SSH-2.0-dropbear_2022.83\r\n"))
	f.Add([]byte("SSH-\xff-\x00 \r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parseSSHVersion(b)
		if err == nil && (v.Proto == "" || v.Software == "") {
			t.Fatalf("accepted %q without protocol or software", b)
		}
	})
}

func TestParseHTTPResponse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want httpInfo
		err  string
	}{
		{"a camera login page", "HTTP/1.1 401 Unauthorized\r\nServer: Boa\r\nWWW-Authenticate: Basic realm=\"IPCamera\"\r\n\r\n<html><title> Cam </title>",
			httpInfo{Proto: "HTTP/1.1", Status: 401, Server: "Boa", AuthScheme: "Basic", Realm: "IPCamera", Title: "Cam"}, ""},
		{"digest with an unquoted realm and a cut body", "HTTP/1.0 401 X\r\nwww-authenticate: Digest realm=dvr, nonce=\"1\"\r\n\r\n<title>unfinished",
			httpInfo{Proto: "HTTP/1.0", Status: 401, AuthScheme: "Digest", Realm: "dvr"}, ""},
		{"headers cut mid-way", "HTTP/1.1 200 OK\r\nServer: lighttpd\r\nX-Fo", httpInfo{Proto: "HTTP/1.1", Status: 200, Server: "lighttpd"}, ""},
		{"RTSP answers in kind", "RTSP/1.0 200 OK\r\nCSeq: 1\r\nServer: Hikvision\r\n\r\n", httpInfo{Proto: "RTSP/1.0", Status: 200, Server: "Hikvision"}, ""},
		{"invalid UTF-8 before the title", "HTTP/1.1 200 OK\r\n\r\n\xff\xfe<TITLE>cam</TITLE>", httpInfo{Proto: "HTTP/1.1", Status: 200, Title: "cam"}, ""},
		{"not HTTP", "SSH-2.0-x\r\n", httpInfo{}, "not an HTTP status line"},
		{"a bad status code", "HTTP/1.1 abc OK\r\n\r\n", httpInfo{}, "bad status code"},
		{"a status line alone", "HTTP/1.1", httpInfo{}, "not an HTTP status line"},
		{"empty", "", httpInfo{}, "not an HTTP status line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseHTTPResponse([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestParseRealm(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{`Basic realm="IPCamera"`, "IPCamera", ""},
		{`Digest REALM="a \"b\"", nonce="x"`, `a "b"`, ""},
		{`Basic realm=plain`, "plain", ""},
		{`Basic realm="unterminated`, "", "unterminated"},
		{`Basic realm=`, "", "empty"},
		{`Bearer`, "", "no realm"},
		{"Basic \xff\xfe REALM=\"dvr\"", "dvr", ""}, // invalid UTF-8 before the parameter once panicked
		{"\xff0000000reAlm=", "", "empty"},
	}
	for _, tt := range tests {
		got, err := parseRealm(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseRealm(%q) err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseRealm(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseHTTPResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 401 X\r\nWWW-Authenticate: Basic realm=\"a\\\r\n\r\n<TITLE>x</title>"))
	f.Add([]byte("HTTP/1.1 200\r\n\r\n<title"))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := parseHTTPResponse(b)
		if err == nil && (info.Status < 100 || info.Status > 999) {
			t.Fatalf("accepted status %d", info.Status)
		}
		_, _ = parseRealm(string(b))
		_ = extractTitle(b)
	})
}

func TestParseConnack(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want connack
		err  string
	}{
		{"accepted", []byte{0x20, 2, 0, 0}, connack{ReturnCode: 0}, ""},
		{"accepted with a session", []byte{0x20, 2, 1, 0}, connack{SessionPresent: true}, ""},
		{"not authorized", []byte{0x20, 2, 0, 5}, connack{ReturnCode: 5}, ""},
		{"too short", []byte{0x20, 2}, connack{}, "2 bytes"},
		{"not a CONNACK", []byte{0x30, 2, 0, 0}, connack{}, "packet type"},
		{"a wrong length", []byte{0x20, 3, 0, 0}, connack{}, "remaining length"},
		{"reserved flags", []byte{0x20, 2, 0x80, 0}, connack{}, "reserved flag"},
		{"an unknown return code", []byte{0x20, 2, 0, 0x87}, connack{}, "unknown return code"},
		{"nothing", nil, connack{}, "0 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConnack(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func FuzzParseConnack(f *testing.F) {
	f.Add([]byte{0x20, 2, 0, 0})
	f.Add([]byte{0x20, 2, 1, 5})
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseConnack(b)
		if err == nil {
			if _, ok := connackCodes[c.ReturnCode]; !ok || b[0] != 0x20 {
				t.Fatalf("accepted %v as %+v", b, c)
			}
		}
	})
}

func TestMQTTConnectIsWellFormed(t *testing.T) {
	p := mqttConnect("fleetward-scan-0123456789ab")
	if p[0] != 0x10 || int(p[1]) != len(p)-2 {
		t.Fatalf("fixed header %v for %d bytes", p[:2], len(p))
	}
	if !bytes.Equal(p[2:10], []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02}) {
		t.Errorf("variable header %v: want MQTT 3.1.1, clean session, no credentials", p[2:10])
	}
}
