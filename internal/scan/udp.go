package scan

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// udpTries is how many times a UDP probe is sent (the first try and two
// retries) before a silent port is given up: a datagram, or its answer, may
// be lost, and a UDP port that does not answer is not reported at all.
const udpTries = 3

// maxDatagram is the most bytes read from one UDP reply.
const maxDatagram = 8192

// udpProbe is the question asked on one UDP port and the parser of its
// answer. parse returns the port filled in from a reply, or an error if
// the datagram is not an answer to the question (which is then ignored).
type udpProbe struct {
	service string
	// anyPort accepts replies from any source port of the target: SSDP
	// devices often answer an M-SEARCH from an ephemeral port.
	anyPort bool
	build   func() (req []byte, match func(reply []byte) error)
	parse   func(reply []byte, p *Port) error
}

// udpProbes are the UDP probes by port. A UDP port without a probe cannot
// be told open from silent, so Options.Validate refuses it.
var udpProbes = map[int]udpProbe{
	5683:  {service: "coap", build: buildCoAPProbe, parse: fillCoAP},
	1900:  {service: "ssdp", anyPort: true, build: buildSSDPProbe, parse: fillSSDP},
	47808: {service: "bacnet", build: buildBACnetProbe, parse: fillBACnet},
}

// probeUDP asks the question of the port's protocol up to udpTries times,
// each send paced by the scan's rate, and reports the port open only when
// a reply parses. Each try waits a third of the connection timeout.
func (s *scanner) probeUDP(ctx context.Context, a netip.Addr, port int) (Port, bool) {
	probe, ok := udpProbes[port]
	if !ok {
		return Port{}, false
	}
	target := netip.AddrPortFrom(a, uint16(port))
	var conn *net.UDPConn
	var err error
	if probe.anyPort {
		conn, err = net.ListenUDP("udp", nil)
	} else {
		// A connected socket sees ICMP port unreachable as a refused read,
		// so a closed port costs one round trip instead of three waits.
		conn, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(target))
	}
	if err != nil {
		return Port{}, false
	}
	defer conn.Close()
	wait := max(s.opts.Timeout/udpTries, 100*time.Millisecond)
	buf := make([]byte, maxDatagram)
	for range udpTries {
		if err := s.pace.Wait(ctx); err != nil {
			return Port{}, false
		}
		req, match := probe.build()
		if probe.anyPort {
			_, err = conn.WriteToUDPAddrPort(req, target)
		} else {
			_, err = conn.Write(req)
		}
		if err != nil {
			return Port{}, false
		}
		deadline := time.Now().Add(wait)
		_ = conn.SetReadDeadline(deadline)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break // try again
				}
				return Port{}, false // refused: ICMP port unreachable
			}
			if from.Addr().Unmap() != a.Unmap() || match(buf[:n]) != nil {
				continue // not an answer to this question
			}
			p := Port{Number: port, Proto: "udp", State: StateOpen, Service: probe.service, Details: map[string]string{}}
			if probe.parse(buf[:n], &p) != nil {
				continue
			}
			if len(p.Details) == 0 {
				p.Details = nil
			}
			return p, true
		}
		if ctx.Err() != nil {
			return Port{}, false
		}
	}
	return Port{}, false
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// ---- CoAP (RFC 7252) ----

// CoAP message types and codes used here (RFC 7252 sections 3 and 12.1).
const (
	coapCON     = 0
	coapNON     = 1
	coapACK     = 2
	coapRST     = 3
	coapGET     = 0x01
	coapUriPath = 11
	coapContent = 12 // Content-Format option
	coapBlock2  = 23
)

// coapMessage is a parsed CoAP message.
type coapMessage struct {
	Type      int
	Code      byte // class<<5 | detail
	MessageID uint16
	Token     []byte
	Options   []coapOption
	Payload   []byte
}

type coapOption struct {
	Number int
	Value  []byte
}

// codeString renders a CoAP code as "2.05".
func (m coapMessage) codeString() string { return fmt.Sprintf("%d.%02d", m.Code>>5, m.Code&0x1f) }

// marshalCoAP encodes a message with its options in ascending order.
func marshalCoAP(m coapMessage) ([]byte, error) {
	if len(m.Token) > 8 {
		return nil, errors.New("coap: token longer than 8 bytes")
	}
	b := []byte{byte(1<<6 | m.Type<<4 | len(m.Token)), m.Code, byte(m.MessageID >> 8), byte(m.MessageID)}
	b = append(b, m.Token...)
	last := 0
	for _, o := range m.Options {
		delta := o.Number - last
		if delta < 0 {
			return nil, errors.New("coap: options out of order")
		}
		last = o.Number
		dn, dext := coapNibble(delta)
		ln, lext := coapNibble(len(o.Value))
		b = append(b, byte(dn<<4|ln))
		b = append(b, dext...)
		b = append(b, lext...)
		b = append(b, o.Value...)
	}
	if len(m.Payload) > 0 {
		b = append(b, 0xff)
		b = append(b, m.Payload...)
	}
	return b, nil
}

func coapNibble(v int) (int, []byte) {
	switch {
	case v < 13:
		return v, nil
	case v < 269:
		return 13, []byte{byte(v - 13)}
	default:
		return 14, []byte{byte((v - 269) >> 8), byte(v - 269)}
	}
}

// parseCoAP decodes a CoAP message (RFC 7252 section 3).
func parseCoAP(b []byte) (coapMessage, error) {
	var m coapMessage
	if len(b) < 4 {
		return m, fmt.Errorf("coap: %d bytes, want at least 4", len(b))
	}
	if b[0]>>6 != 1 {
		return m, fmt.Errorf("coap: version %d, want 1", b[0]>>6)
	}
	m.Type = int(b[0]>>4) & 3
	tkl := int(b[0] & 0x0f)
	if tkl > 8 {
		return m, fmt.Errorf("coap: token length %d, at most 8", tkl)
	}
	m.Code = b[1]
	m.MessageID = binary.BigEndian.Uint16(b[2:4])
	b = b[4:]
	if len(b) < tkl {
		return m, errors.New("coap: message ends inside the token")
	}
	m.Token, b = b[:tkl], b[tkl:]
	num := 0
	for len(b) > 0 {
		if b[0] == 0xff {
			if len(b) == 1 {
				return m, errors.New("coap: payload marker with no payload")
			}
			m.Payload = b[1:]
			break
		}
		delta, length := int(b[0]>>4), int(b[0]&0x0f)
		b = b[1:]
		var err error
		if delta, b, err = coapExtend(delta, b); err != nil {
			return m, fmt.Errorf("coap: option delta: %w", err)
		}
		if length, b, err = coapExtend(length, b); err != nil {
			return m, fmt.Errorf("coap: option length: %w", err)
		}
		if len(b) < length {
			return m, errors.New("coap: message ends inside an option value")
		}
		num += delta
		if len(m.Options) >= 64 {
			return m, errors.New("coap: more than 64 options")
		}
		m.Options = append(m.Options, coapOption{Number: num, Value: b[:length]})
		b = b[length:]
	}
	return m, nil
}

func coapExtend(v int, b []byte) (int, []byte, error) {
	switch v {
	case 13:
		if len(b) < 1 {
			return 0, nil, errors.New("message ends inside an extended value")
		}
		return int(b[0]) + 13, b[1:], nil
	case 14:
		if len(b) < 2 {
			return 0, nil, errors.New("message ends inside an extended value")
		}
		return int(binary.BigEndian.Uint16(b)) + 269, b[2:], nil
	case 15:
		return 0, nil, errors.New("reserved value 15")
	}
	return v, b, nil
}

func coapUint(v []byte) int {
	n := 0
	for _, c := range v {
		n = n<<8 | int(c)
	}
	return n
}

// buildCoAPProbe asks GET /.well-known/core (RFC 6690) as a confirmable
// message with a fresh message id and token; match accepts only the
// answer to it (RFC 7252 5.3.2 and 4.4).
func buildCoAPProbe() ([]byte, func([]byte) error) {
	id := randomBytes(6)
	req := coapMessage{Type: coapCON, Code: coapGET, MessageID: binary.BigEndian.Uint16(id), Token: id[2:6],
		Options: []coapOption{{coapUriPath, []byte(".well-known")}, {coapUriPath, []byte("core")}}}
	b, _ := marshalCoAP(req)
	return b, func(reply []byte) error {
		m, err := parseCoAP(reply)
		if err != nil {
			return err
		}
		switch {
		case m.Type == coapRST && m.MessageID == req.MessageID:
			return nil // an RST still shows a CoAP endpoint
		case m.Type == coapACK && m.MessageID != req.MessageID:
			return errors.New("coap: ack for another message")
		case m.Code != 0 && !bytes.Equal(m.Token, req.Token):
			return errors.New("coap: response with another token")
		}
		return nil
	}
}

// coapResource is one link of a CoRE link-format document (RFC 6690).
type coapResource struct {
	Path  string
	Attrs map[string]string
}

// parseLinkFormat parses a CoRE link-format payload
// (`</sensors/temp>;rt="temperature-c";if="sensor",</light>;ct=0`). It
// keeps at most 256 links and the attributes it can read; a link that is
// not <...> is an error.
func parseLinkFormat(s string) ([]coapResource, error) {
	var out []coapResource
	for len(s) > 0 {
		s = strings.TrimLeft(s, " \t\r\n,")
		if s == "" {
			break
		}
		if s[0] != '<' {
			return out, fmt.Errorf("link-format: link %q does not start with <", truncate(printable([]byte(s)), 32))
		}
		end := strings.IndexByte(s, '>')
		if end < 0 {
			return out, errors.New("link-format: unterminated <")
		}
		r := coapResource{Path: printable([]byte(s[1:end])), Attrs: map[string]string{}}
		s = s[end+1:]
		for len(s) > 0 && s[0] == ';' {
			s = s[1:]
			i := strings.IndexAny(s, "=;,")
			if i < 0 {
				i = len(s)
			}
			name := strings.TrimSpace(s[:i])
			s = s[i:]
			val := ""
			if len(s) > 0 && s[0] == '=' {
				s = s[1:]
				if len(s) > 0 && s[0] == '"' {
					q := strings.IndexByte(s[1:], '"')
					if q < 0 {
						return out, errors.New("link-format: unterminated quoted value")
					}
					val, s = s[1:q+1], s[q+2:]
				} else {
					j := strings.IndexAny(s, ";,")
					if j < 0 {
						j = len(s)
					}
					val, s = s[:j], s[j:]
				}
			}
			if name != "" && len(r.Attrs) < 16 {
				r.Attrs[printable([]byte(truncate(name, 32)))] = printable([]byte(truncate(val, 128)))
			}
		}
		if len(s) > 0 && s[0] != ',' {
			return out, fmt.Errorf("link-format: unexpected %q after link %s", s[0], r.Path)
		}
		if len(out) < 256 {
			out = append(out, r)
		}
	}
	return out, nil
}

func fillCoAP(reply []byte, p *Port) error {
	m, err := parseCoAP(reply)
	if err != nil {
		return err
	}
	p.Plaintext = true // CoAP without DTLS (5684) carries everything in clear
	if m.Type == coapRST {
		p.Details["coap_code"] = "reset"
		p.Banner = "CoAP, reset (no /.well-known/core)"
		return nil
	}
	p.Details["coap_code"] = m.codeString()
	for _, o := range m.Options {
		switch o.Number {
		case coapContent:
			p.Details["coap_content_format"] = strconv.Itoa(coapUint(o.Value))
		case coapBlock2:
			if coapUint(o.Value)&0x08 != 0 {
				p.Details["coap_more_blocks"] = "true" // only the first block is read
			}
		}
	}
	banner := "CoAP " + m.codeString()
	if m.Code == 0x45 { // 2.05 Content
		res, err := parseLinkFormat(string(m.Payload))
		if err != nil {
			p.Details["coap_link_format_error"] = err.Error()
		}
		var paths []string
		for _, r := range res {
			s := r.Path
			if rt := r.Attrs["rt"]; rt != "" {
				s += ` rt="` + rt + `"`
			}
			paths = append(paths, s)
		}
		p.Details["coap_resources"] = truncate(strings.Join(paths, ", "), 1024)
		p.Details["coap_resource_count"] = strconv.Itoa(len(res))
		banner += fmt.Sprintf(", %d resources", len(res))
		if len(res) > 0 {
			banner += ": " + strings.Join(paths, ", ")
		}
	}
	p.Banner = truncate(banner, 256)
	return nil
}

// ---- SSDP (UPnP Device Architecture 2.0, section 1.3) ----

// buildSSDPProbe is a unicast M-SEARCH for every service (UDA 2.0 1.3.2:
// a unicast search names the device in HOST and carries no MX).
func buildSSDPProbe() ([]byte, func([]byte) error) {
	req := []byte("M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nST: ssdp:all\r\nUSER-AGENT: fleetward-scan UPnP/2.0\r\n\r\n")
	return req, func(reply []byte) error { _, err := parseSSDPResponse(reply); return err }
}

// ssdpInfo is what an M-SEARCH response says.
type ssdpInfo struct {
	Status                    int
	Server, ST, USN, Location string
}

// parseSSDPResponse parses an M-SEARCH response ("HTTP/1.1 200 OK" and
// headers). A NOTIFY or an M-SEARCH from another control point is not one.
func parseSSDPResponse(b []byte) (ssdpInfo, error) {
	var info ssdpInfo
	head, _, _ := bytes.Cut(b, []byte("\r\n\r\n"))
	lines := strings.Split(string(head), "\n")
	status := strings.TrimRight(lines[0], "\r")
	proto, rest, ok := strings.Cut(status, " ")
	if !ok || !strings.HasPrefix(proto, "HTTP/1.") {
		return info, fmt.Errorf("ssdp: not a response status line: %q", printable([]byte(truncate(status, 64))))
	}
	code, _, _ := strings.Cut(rest, " ")
	n, err := strconv.Atoi(code)
	if err != nil || n < 100 || n > 999 {
		return info, fmt.Errorf("ssdp: status line %q: bad status code", printable([]byte(truncate(status, 64))))
	}
	info.Status = n
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(strings.TrimRight(l, "\r"), ":")
		if !ok {
			continue
		}
		value = printable([]byte(truncate(strings.TrimSpace(value), 256)))
		switch strings.ToUpper(strings.TrimSpace(name)) {
		case "SERVER":
			info.Server = value
		case "ST":
			info.ST = value
		case "USN":
			info.USN = value
		case "LOCATION":
			info.Location = value
		}
	}
	if info.ST == "" && info.USN == "" && info.Server == "" {
		return info, errors.New("ssdp: response has no SERVER, ST or USN header")
	}
	return info, nil
}

func fillSSDP(reply []byte, p *Port) error {
	info, err := parseSSDPResponse(reply)
	if err != nil {
		return err
	}
	p.Plaintext = true
	parts := []string{"SSDP " + strconv.Itoa(info.Status)}
	for _, kv := range [][2]string{{"server", info.Server}, {"st", info.ST}, {"usn", info.USN}, {"location", info.Location}} {
		if kv[1] != "" {
			p.Details["ssdp_"+kv[0]] = kv[1]
			parts = append(parts, kv[0]+" "+kv[1])
		}
	}
	if info.Server != "" {
		p.Details["server"] = info.Server // for the fingerprints, like HTTP's
	}
	p.Banner = truncate(strings.Join(parts, ", "), 256)
	return nil
}

// ---- BACnet/IP (ANSI/ASHRAE 135, Annex J and clauses 6, 16.10, 20) ----

// bacnetWhoIs is a Who-Is without a range, in an Original-Unicast-NPDU,
// for the local network only (no DNET, so no router forwards it).
var bacnetWhoIs = []byte{0x81, 0x0a, 0x00, 0x08, 0x01, 0x00, 0x10, 0x08}

func buildBACnetProbe() ([]byte, func([]byte) error) {
	return bacnetWhoIs, func(reply []byte) error { _, err := parseIAm(reply); return err }
}

// iAm is the content of a BACnet I-Am (clause 16.10.3).
type iAm struct {
	ObjectType   int // 8 for a device
	Instance     int
	MaxAPDU      int
	Segmentation int
	VendorID     int
}

// parseIAm parses a BVLC frame carrying an I-Am.
func parseIAm(b []byte) (iAm, error) {
	var r iAm
	if len(b) < 4 || b[0] != 0x81 {
		return r, errors.New("bacnet: not a BACnet/IP frame")
	}
	if int(binary.BigEndian.Uint16(b[2:4])) != len(b) {
		return r, fmt.Errorf("bacnet: BVLC length %d, datagram %d bytes", binary.BigEndian.Uint16(b[2:4]), len(b))
	}
	switch b[1] {
	case 0x0a, 0x0b: // Original-Unicast-NPDU, Original-Broadcast-NPDU
		b = b[4:]
	case 0x04: // Forwarded-NPDU: the original source address and port first
		if len(b) < 10 {
			return r, errors.New("bacnet: short Forwarded-NPDU")
		}
		b = b[10:]
	default:
		return r, fmt.Errorf("bacnet: BVLC function 0x%02x carries no APDU", b[1])
	}
	if len(b) < 2 || b[0] != 0x01 {
		return r, errors.New("bacnet: NPDU version is not 1")
	}
	ctl := b[1]
	b = b[2:]
	if ctl&0x80 != 0 {
		return r, errors.New("bacnet: network layer message, not an APDU")
	}
	skipAddr := func() error {
		if len(b) < 3 {
			return errors.New("bacnet: NPDU ends inside an address")
		}
		l := int(b[2])
		if len(b) < 3+l {
			return errors.New("bacnet: NPDU ends inside an address")
		}
		b = b[3+l:]
		return nil
	}
	if ctl&0x20 != 0 {
		if err := skipAddr(); err != nil {
			return r, err
		}
	}
	if ctl&0x08 != 0 {
		if err := skipAddr(); err != nil {
			return r, err
		}
	}
	if ctl&0x20 != 0 {
		if len(b) < 1 {
			return r, errors.New("bacnet: NPDU ends before the hop count")
		}
		b = b[1:]
	}
	if len(b) < 2 || b[0]>>4 != 1 || b[1] != 0x00 {
		return r, errors.New("bacnet: APDU is not an I-Am")
	}
	b = b[2:]
	var vals [4]uint32
	for i := range 4 {
		tag, v, rest, err := bacnetAppTag(b)
		if err != nil {
			return r, fmt.Errorf("bacnet: I-Am field %d: %w", i+1, err)
		}
		want := []int{12, 2, 9, 2}[i]
		if tag != want {
			return r, fmt.Errorf("bacnet: I-Am field %d has tag %d, want %d", i+1, tag, want)
		}
		vals[i], b = v, rest
	}
	r.ObjectType = int(vals[0] >> 22)
	r.Instance = int(vals[0] & 0x3fffff)
	r.MaxAPDU, r.Segmentation, r.VendorID = int(vals[1]), int(vals[2]), int(vals[3])
	return r, nil
}

// bacnetAppTag reads one application-tagged primitive of at most 4 bytes.
func bacnetAppTag(b []byte) (tag int, v uint32, rest []byte, err error) {
	if len(b) < 1 {
		return 0, 0, nil, errors.New("missing")
	}
	if b[0]&0x08 != 0 {
		return 0, 0, nil, errors.New("context tag, want an application tag")
	}
	tag, l := int(b[0]>>4), int(b[0]&7)
	if l > 4 {
		return 0, 0, nil, fmt.Errorf("value of %d bytes, at most 4", l)
	}
	if len(b) < 1+l {
		return 0, 0, nil, errors.New("frame ends inside the value")
	}
	for _, c := range b[1 : 1+l] {
		v = v<<8 | uint32(c)
	}
	return tag, v, b[1+l:], nil
}

func fillBACnet(reply []byte, p *Port) error {
	r, err := parseIAm(reply)
	if err != nil {
		return err
	}
	p.Plaintext = true
	p.Details["bacnet_object_type"] = strconv.Itoa(r.ObjectType)
	p.Details["bacnet_device_instance"] = strconv.Itoa(r.Instance)
	p.Details["bacnet_vendor_id"] = strconv.Itoa(r.VendorID)
	p.Details["bacnet_max_apdu"] = strconv.Itoa(r.MaxAPDU)
	p.Banner = fmt.Sprintf("BACnet I-Am device %d, vendor id %d", r.Instance, r.VendorID)
	if v, ok := bacnetVendors[r.VendorID]; ok {
		p.Details["vendor"] = v
		p.Banner += " (" + v + ")"
	}
	return nil
}

// bacnetVendors names a few vendor ids of ASHRAE's BACnet vendor id list
// (https://bacnet.org/assigned-vendor-ids/).
var bacnetVendors = map[int]string{
	0: "ASHRAE", 2: "The Trane Company", 5: "Johnson Controls", 7: "Siemens", 8: "Delta Controls",
	24: "Automated Logic", 260: "BACnet Stack (open source)",
}
