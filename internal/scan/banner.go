package scan

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"strconv"
	"strings"

	"github.com/fleetward/fleetward/internal/ascii"
)

// maxBanner is the most bytes read from one service.
const maxBanner = 4096

// Telnet protocol bytes (RFC 854).
const (
	telnetIAC  = 255
	telnetDONT = 254
	telnetDO   = 253
	telnetWONT = 252
	telnetWILL = 251
	telnetSB   = 250
	telnetSE   = 240
)

var telnetOptionNames = map[byte]string{0: "BINARY", 1: "ECHO", 3: "SGA", 5: "STATUS", 24: "TTYPE", 31: "NAWS", 32: "TSPEED", 33: "LFLOW", 34: "LINEMODE", 36: "ENVIRON", 39: "NEW-ENVIRON"}

// telnetNegotiation strips Telnet commands from a byte stream and answers
// every DO with WONT and every WILL with DONT, so that a server stops
// negotiating and shows its prompt. It keeps state between Feed calls
// because a command may be split across reads.
type telnetNegotiation struct {
	state   int // 0 data, 1 after IAC, 2 after DO/DONT/WILL/WONT, 3 in SB, 4 IAC in SB
	verb    byte
	options []string // what the server asked, "DO ECHO", for the report
}

// Feed consumes b and returns the data bytes in it and the replies to send.
func (t *telnetNegotiation) Feed(b []byte) (text, reply []byte) {
	for _, c := range b {
		switch t.state {
		case 0:
			if c == telnetIAC {
				t.state = 1
			} else {
				text = append(text, c)
			}
		case 1:
			switch c {
			case telnetIAC: // escaped 255
				text = append(text, c)
				t.state = 0
			case telnetDO, telnetDONT, telnetWILL, telnetWONT:
				t.verb = c
				t.state = 2
			case telnetSB:
				t.state = 3
			default: // NOP, GA, SE out of place and the like carry no option
				t.state = 0
			}
		case 2:
			switch t.verb {
			case telnetDO:
				reply = append(reply, telnetIAC, telnetWONT, c)
			case telnetWILL:
				reply = append(reply, telnetIAC, telnetDONT, c)
			}
			// DONT and WONT need no answer; answering them could loop.
			if len(t.options) < 32 {
				t.options = append(t.options, telnetVerbName(t.verb)+" "+telnetOptionName(c))
			}
			t.state = 0
		case 3:
			if c == telnetIAC {
				t.state = 4
			}
		case 4:
			if c == telnetSE {
				t.state = 0
			} else {
				t.state = 3
			}
		}
	}
	return text, reply
}

func telnetVerbName(v byte) string {
	switch v {
	case telnetDO:
		return "DO"
	case telnetDONT:
		return "DONT"
	case telnetWILL:
		return "WILL"
	default:
		return "WONT"
	}
}

func telnetOptionName(o byte) string {
	if n, ok := telnetOptionNames[o]; ok {
		return n
	}
	return strconv.Itoa(int(o))
}

// looksLikePrompt reports whether Telnet text ends in a login or shell
// prompt, so the grabber can stop reading.
func looksLikePrompt(text []byte) bool {
	t := strings.ToLower(strings.TrimRight(string(text), " \t\r\n"))
	for _, s := range []string{"login:", "username:", "user:", "password:", "user name:", "#", "$", ">"} {
		if strings.HasSuffix(t, s) {
			return true
		}
	}
	return false
}

// sshVersion is the identification line of an SSH server (RFC 4253 4.2).
type sshVersion struct {
	Proto, Software, Comments string
}

// parseSSHVersion finds the identification line ("SSH-2.0-dropbear_2022.83")
// in what an SSH server sent first; RFC 4253 allows other lines before it.
func parseSSHVersion(b []byte) (sshVersion, error) {
	for _, line := range bytes.Split(b, []byte("\n")) {
		line = bytes.TrimRight(line, "\r")
		if !bytes.HasPrefix(line, []byte("SSH-")) {
			continue
		}
		if len(line) > 255 {
			return sshVersion{}, errors.New("ssh identification line longer than 255 bytes")
		}
		proto, rest, ok := strings.Cut(string(line[4:]), "-")
		if !ok || proto == "" {
			return sshVersion{}, fmt.Errorf("ssh identification %q: no protocol version", printable(line))
		}
		soft, comments, _ := strings.Cut(rest, " ")
		if soft == "" {
			return sshVersion{}, fmt.Errorf("ssh identification %q: no software version", printable(line))
		}
		return sshVersion{Proto: proto, Software: printable([]byte(soft)), Comments: printable([]byte(comments))}, nil
	}
	return sshVersion{}, errors.New("no ssh identification line")
}

// httpInfo is what an HTTP (or RTSP) response says about the device.
type httpInfo struct {
	Proto      string // "HTTP/1.1" or "RTSP/1.0"
	Status     int
	Server     string
	Realm      string // from WWW-Authenticate
	AuthScheme string
	Title      string
}

// parseHTTPResponse reads the status line, headers and <title> from the
// first bytes of a response, which may be cut anywhere.
func parseHTTPResponse(b []byte) (httpInfo, error) {
	var info httpInfo
	head, body, _ := bytes.Cut(b, []byte("\r\n\r\n"))
	lines := strings.Split(string(head), "\n")
	status := strings.TrimRight(lines[0], "\r")
	proto, rest, ok := strings.Cut(status, " ")
	if !ok || !(strings.HasPrefix(proto, "HTTP/") || strings.HasPrefix(proto, "RTSP/")) {
		return info, fmt.Errorf("not an HTTP status line: %q", printable([]byte(truncate(status, 64))))
	}
	code, _, _ := strings.Cut(rest, " ")
	n, err := strconv.Atoi(code)
	if err != nil || n < 100 || n > 999 {
		return info, fmt.Errorf("HTTP status line %q: bad status code", printable([]byte(truncate(status, 64))))
	}
	info.Proto, info.Status = proto, n
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(strings.TrimRight(l, "\r"), ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "server":
			info.Server = printable([]byte(truncate(value, 200)))
		case "www-authenticate":
			if info.AuthScheme == "" {
				scheme, _, _ := strings.Cut(value, " ")
				info.AuthScheme = printable([]byte(truncate(scheme, 32)))
				info.Realm, _ = parseRealm(value)
			}
		}
	}
	info.Title = extractTitle(body)
	return info, nil
}

// parseRealm returns the realm parameter of a WWW-Authenticate value
// (`Basic realm="IPCamera"`), quoted or not.
func parseRealm(v string) (string, error) {
	i := strings.Index(ascii.Lower(v), "realm=")
	if i < 0 {
		return "", errors.New("no realm parameter")
	}
	v = v[i+len("realm="):]
	if strings.HasPrefix(v, `"`) {
		var sb strings.Builder
		for j := 1; j < len(v); j++ {
			switch c := v[j]; c {
			case '\\':
				if j+1 < len(v) {
					j++
					sb.WriteByte(v[j])
				}
			case '"':
				return printable([]byte(truncate(sb.String(), 200))), nil
			default:
				sb.WriteByte(c)
			}
		}
		return "", errors.New("realm: unterminated quoted string")
	}
	end := strings.IndexAny(v, ", \t")
	if end >= 0 {
		v = v[:end]
	}
	if v == "" {
		return "", errors.New("realm: empty value")
	}
	return printable([]byte(truncate(v, 200))), nil
}

// extractTitle returns the text of the first <title> element, unescaped,
// with white space collapsed, or "".
func extractTitle(body []byte) string {
	lower := ascii.Lower(body)
	i := bytes.Index(lower, []byte("<title"))
	if i < 0 {
		return ""
	}
	gt := bytes.IndexByte(lower[i:], '>')
	if gt < 0 {
		return ""
	}
	start := i + gt + 1
	end := bytes.Index(lower[start:], []byte("</title"))
	if end < 0 {
		return ""
	}
	t := html.UnescapeString(string(body[start : start+end]))
	return printable([]byte(truncate(strings.Join(strings.Fields(t), " "), 200)))
}

// MQTT CONNACK return codes of MQTT 3.1.1 (section 3.2.2.3).
var connackCodes = map[byte]string{
	0: "accepted", 1: "unacceptable protocol version", 2: "identifier rejected",
	3: "server unavailable", 4: "bad user name or password", 5: "not authorized",
}

// connack is an MQTT 3.1.1 CONNACK packet.
type connack struct {
	SessionPresent bool
	ReturnCode     byte
}

// parseConnack parses the first packet a broker sent after CONNECT.
func parseConnack(b []byte) (connack, error) {
	if len(b) < 4 {
		return connack{}, fmt.Errorf("mqtt connack: %d bytes, want 4", len(b))
	}
	if b[0] != 0x20 {
		return connack{}, fmt.Errorf("mqtt connack: packet type byte 0x%02x, want 0x20", b[0])
	}
	if b[1] != 2 {
		return connack{}, fmt.Errorf("mqtt connack: remaining length %d, want 2", b[1])
	}
	if b[2]&^1 != 0 {
		return connack{}, fmt.Errorf("mqtt connack: reserved flag bits set (0x%02x)", b[2])
	}
	if _, ok := connackCodes[b[3]]; !ok {
		return connack{}, fmt.Errorf("mqtt connack: unknown return code %d", b[3])
	}
	return connack{SessionPresent: b[2]&1 == 1, ReturnCode: b[3]}, nil
}

// mqttConnect builds an MQTT 3.1.1 CONNECT with a clean session, no will
// and no credentials: the question is whether the broker lets anyone in.
func mqttConnect(clientID string) []byte {
	var vh []byte
	vh = append(vh, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 30)
	vh = append(vh, byte(len(clientID)>>8), byte(len(clientID)))
	vh = append(vh, clientID...)
	// The packet stays under 128 bytes, so the remaining length is one byte.
	return append([]byte{0x10, byte(len(vh))}, vh...)
}

// mqttDisconnect is the MQTT DISCONNECT packet.
var mqttDisconnect = []byte{0xE0, 0x00}

// printable returns b as text, with bytes that are not printable ASCII
// replaced by '.', tabs and line ends kept as a space.
func printable(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		switch {
		case c >= 0x20 && c < 0x7f:
			sb.WriteByte(c)
		case c == '\t' || c == '\r' || c == '\n':
			sb.WriteByte(' ')
		default:
			sb.WriteByte('.')
		}
	}
	return sb.String()
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
