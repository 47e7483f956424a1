package scan

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"io"
	"time"
)

// mqttConnectAuth builds an MQTT 3.1.1 CONNECT with a clean session and a
// username and password.
func mqttConnectAuth(clientID, user, pass string) []byte {
	str := func(b []byte, s string) []byte { return append(append(b, byte(len(s)>>8), byte(len(s))), s...) }
	vh := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02 | 0x80 | 0x40, 0, 30}
	vh = str(vh, clientID)
	vh = str(vh, user)
	vh = str(vh, pass)
	// Remaining length, variable-length encoded (section 2.2.3).
	var rl []byte
	for n := len(vh); ; {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		rl = append(rl, d)
		if n == 0 {
			break
		}
	}
	return append(append([]byte{0x10}, rl...), vh...)
}

// loginMQTT sends one CONNECT with the credential; CONNACK 0 is a login.
// Over TLS (mqtts) it works only when the broker asks for no client
// certificate, which the banner grab has established.
func (s *scanner) loginMQTT(ctx context.Context, target string, overTLS bool, c Credential) (bool, error) {
	dctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	conn, err := s.dial(dctx, "tcp", target)
	cancel()
	if err != nil {
		return false, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(2 * s.opts.ReadTimeout))
	if overTLS {
		tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, ServerName: serverName(target)})
		if err := tc.HandshakeContext(ctx); err != nil {
			return false, err
		}
		conn = tc
	}
	id := make([]byte, 6)
	_, _ = rand.Read(id)
	if _, err := conn.Write(mqttConnectAuth("fleetward-scan-"+hex.EncodeToString(id), c.Username, c.Password)); err != nil {
		return false, err
	}
	b := make([]byte, 4)
	if _, err := io.ReadFull(conn, b); err != nil {
		return false, err
	}
	ca, err := parseConnack(b)
	if err != nil {
		return false, err
	}
	if ca.ReturnCode == 0 {
		_, _ = conn.Write(mqttDisconnect)
		return true, nil
	}
	if ca.ReturnCode == 4 || ca.ReturnCode == 5 {
		return false, nil
	}
	return false, lockoutErr("mqtt connack: " + connackCodes[ca.ReturnCode])
}
