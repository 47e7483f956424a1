package scan

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
)

// Modbus/TCP presence (Modbus Application Protocol v1.1b3, section 6.21,
// and Modbus Messaging on TCP/IP Implementation Guide v1.0b, section 3.1).
// The scan asks one read-only question, Read Device Identification
// (function 43, MEI type 14), for the basic objects: vendor name, product
// code and revision. It never sends a function that writes (5, 6, 15, 16,
// 22, 23): a write could move an actuator.

// modbusExceptions names the exception codes a server may answer with.
var modbusExceptions = map[byte]string{
	1: "illegal function", 2: "illegal data address", 3: "illegal data value", 4: "server device failure",
	6: "server device busy", 10: "gateway path unavailable", 11: "gateway target device failed to respond",
}

// modbusDeviceID is a parsed Read Device Identification answer, or the
// exception the server sent instead.
type modbusDeviceID struct {
	Unit        byte
	Exception   byte // 0 when the server answered
	Conformity  byte
	MoreFollows bool
	Objects     map[byte]string // 0 vendor name, 1 product code, 2 revision, ...
}

// modbusReadDeviceID builds the request: MBAP header (transaction id,
// protocol 0, length 5, unit 0xFF as the guide says for a device addressed
// by IP) and the PDU 2B 0E 01 00 (basic identification from object 0).
func modbusReadDeviceID(tid uint16) []byte {
	return []byte{byte(tid >> 8), byte(tid), 0, 0, 0, 5, 0xff, 0x2b, 0x0e, 0x01, 0x00}
}

// parseModbusDeviceID parses the reply to modbusReadDeviceID(tid): an
// answer or an exception. Anything else, or a reply to another
// transaction, is an error.
func parseModbusDeviceID(b []byte, tid uint16) (modbusDeviceID, error) {
	var r modbusDeviceID
	if len(b) < 9 {
		return r, fmt.Errorf("modbus: %d bytes, want at least 9", len(b))
	}
	if got := binary.BigEndian.Uint16(b[0:2]); got != tid {
		return r, fmt.Errorf("modbus: transaction id %d, want %d", got, tid)
	}
	if binary.BigEndian.Uint16(b[2:4]) != 0 {
		return r, errors.New("modbus: protocol id is not 0")
	}
	if l := int(binary.BigEndian.Uint16(b[4:6])); l != len(b)-6 {
		return r, fmt.Errorf("modbus: MBAP length %d, %d bytes follow", l, len(b)-6)
	}
	r.Unit = b[6]
	pdu := b[7:]
	switch pdu[0] {
	case 0xab:
		r.Exception = pdu[1]
		if len(pdu) != 2 {
			return r, errors.New("modbus: exception reply of the wrong length")
		}
		return r, nil
	case 0x2b:
	default:
		return r, fmt.Errorf("modbus: function 0x%02x, want 0x2b or its exception 0xab", pdu[0])
	}
	if pdu[1] != 0x0e {
		return r, fmt.Errorf("modbus: MEI type %d, want 14", pdu[1])
	}
	if len(pdu) < 7 {
		return r, errors.New("modbus: device identification header cut short")
	}
	r.Conformity, r.MoreFollows = pdu[3], pdu[4] == 0xff
	n := int(pdu[6])
	objs := pdu[7:]
	r.Objects = map[byte]string{}
	for i := range n {
		if len(objs) < 2 || len(objs) < 2+int(objs[1]) {
			return r, fmt.Errorf("modbus: object %d of %d cut short", i+1, n)
		}
		id, l := objs[0], int(objs[1])
		r.Objects[id] = printable(objs[2 : 2+l])
		objs = objs[2+l:]
	}
	return r, nil
}

func (s *scanner) grabModbus(conn net.Conn, p *Port, details map[string]string) bool {
	tid := binary.BigEndian.Uint16(randomBytes(2))
	if _, err := conn.Write(modbusReadDeviceID(tid)); err != nil {
		return false
	}
	head := make([]byte, 7)
	if _, err := io.ReadFull(conn, head); err != nil {
		return false
	}
	l := int(binary.BigEndian.Uint16(head[4:6]))
	if l < 2 || l > 254 { // an ADU is at most 260 bytes
		return false
	}
	rest := make([]byte, l-1)
	if _, err := io.ReadFull(conn, rest); err != nil {
		return false
	}
	r, err := parseModbusDeviceID(append(head, rest...), tid)
	if err != nil {
		return false
	}
	p.Service, p.Plaintext = "modbus", true
	if r.Exception != 0 {
		name := modbusExceptions[r.Exception]
		if name == "" {
			name = "code " + strconv.Itoa(int(r.Exception))
		}
		details["modbus_exception"] = name
		p.Banner = "Modbus/TCP, device identification refused: " + name
		return true
	}
	var parts []string
	for id, key := range []string{"modbus_vendor", "modbus_product_code", "modbus_revision"} {
		if v := r.Objects[byte(id)]; v != "" {
			details[key] = truncate(v, 128)
			parts = append(parts, truncate(v, 64))
		}
	}
	if v := r.Objects[0]; v != "" {
		details["vendor"] = truncate(v, 128)
	}
	if v := r.Objects[1]; v != "" {
		details["product"] = truncate(v, 128)
	}
	if v := r.Objects[2]; v != "" {
		details["version"] = truncate(v, 128)
	}
	p.Banner = "Modbus/TCP"
	if len(parts) > 0 {
		p.Banner += ", " + strings.Join(parts, " ")
	}
	return true
}
