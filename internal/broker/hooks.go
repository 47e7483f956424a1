package broker

import (
	"bytes"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"net"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// hook connects mochi's events to the broker's identity, ACL, rate-limit
// and metrics checks. Every method here sees client-provided data.
type hook struct {
	mqtt.HookBase
	b *Broker
}

func (h *hook) ID() string { return "fleetward" }

func (h *hook) Provides(b byte) bool {
	return bytes.Contains([]byte{
		mqtt.OnConnect,
		mqtt.OnConnectAuthenticate,
		mqtt.OnACLCheck,
		mqtt.OnSubscribe,
		mqtt.OnPublish,
		mqtt.OnPacketSent,
		mqtt.OnPublishDropped,
		mqtt.OnDisconnect,
	}, []byte{b})
}

// publishDroppedPause is how long a publisher's read loop waits after one
// of its messages found a subscriber's queue full.
const publishDroppedPause = time.Millisecond

// OnPublishDropped is called on the publisher's goroutine when a message
// could not be queued for a subscriber whose write queue is full. Pausing
// that publisher for a moment is backpressure: the engine reads every
// connection concurrently, and without it a flood from many publishers
// keeps the one subscriber's writer from the CPU and nearly everything is
// dropped. With it, the TCP windows of the publishers fill instead, as
// with a single-threaded broker.
func (h *hook) OnPublishDropped(cl *mqtt.Client, pk packets.Packet) {
	time.Sleep(publishDroppedPause)
}

// errConnectDenied is returned to mochi after a refused CONNECT has been
// answered.
var errConnectDenied = errors.New("connect denied")

// OnConnect identifies the client from its verified certificate and refuses
// it, with CONNACK "not authorized", unless the certificate names an
// enrolled, unrevoked device, the client id is that device's id, and the
// TLS version is allowed for its class.
func (h *hook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	b := h.b
	remote := hostOf(cl.Net.Remote)
	dc, _ := cl.Net.Conn.(*deviceConn)
	clientID := pk.Connect.ClientIdentifier
	if dc == nil {
		return b.refuse(cl, "", remote, "", "connection did not come through the fleetward listener")
	}
	if dc.tls == nil {
		if !b.cfg.InsecureOpenForTests {
			return b.refuse(cl, "", remote, "", "plaintext connections carry no device identity")
		}
		b.addSession(cl, &session{
			info: Session{DeviceID: cl.ID, ClientID: cl.ID, Remote: cl.Net.Remote, ConnectedAt: time.Now().UTC(), ProtocolVersion: cl.Properties.ProtocolVersion},
			open: true,
		})
		return nil
	}
	if len(dc.tls.VerifiedChains) == 0 || len(dc.tls.VerifiedChains[0]) == 0 {
		return b.refuse(cl, "", remote, "", "no verified client certificate")
	}
	deviceID, class, err := b.authority.VerifyClient(dc.tls.VerifiedChains)
	if err != nil {
		return b.refuse(cl, "", remote, "", "certificate not accepted: "+err.Error())
	}
	if !validDeviceID(deviceID) {
		return b.refuse(cl, "", remote, class, "device id in certificate cannot be used in topics")
	}
	dev := b.devices.get(deviceID)
	dev.update(func(m *Metrics) {
		m.ConnectAttempts++
		m.LastSourceIP = remote
		m.LastSeen = time.Now().UTC()
	})
	leaf := dc.tls.VerifiedChains[0][0]
	if b.authority.Revoked(leaf.SerialNumber) {
		return b.refuse(cl, deviceID, remote, class, "certificate revoked")
	}
	policy := b.policy(class)
	if dc.tls.Version < tls.VersionTLS13 && !policy.Legacy {
		return b.refuse(cl, deviceID, remote, class, "TLS 1.3 required for this device class")
	}
	if clientID != deviceID {
		return b.refuse(cl, deviceID, remote, class, "client id does not match certificate device id")
	}
	pub := expand(policy.Publish, deviceID)
	if cl.Properties.Will.Flag == 1 && !allowed(pub, cl.Properties.Will.TopicName) {
		return b.refuse(cl, deviceID, remote, class, "will topic not allowed: "+cl.Properties.Will.TopicName)
	}
	info := Session{
		DeviceID:        deviceID,
		Class:           class,
		ClientID:        clientID,
		Remote:          cl.Net.Remote,
		ConnectedAt:     time.Now().UTC(),
		TLSVersion:      tls.VersionName(dc.tls.Version),
		Group:           dc.tls.CurveID.String(),
		PostQuantum:     postQuantum(dc.tls.CurveID),
		Serial:          hex.EncodeToString(leaf.SerialNumber.Bytes()),
		ProtocolVersion: cl.Properties.ProtocolVersion,
	}
	b.addSession(cl, &session{info: info, pub: pub, sub: expand(policy.Subscribe, deviceID), device: dev})
	return nil
}

// postQuantum reports whether a key exchange is a hybrid with ML-KEM.
func postQuantum(id tls.CurveID) bool {
	switch id {
	case tls.X25519MLKEM768, tls.SecP256r1MLKEM768, tls.SecP384r1MLKEM1024:
		return true
	}
	return false
}

// refuse answers a CONNECT with "not authorized" and records the denial.
func (b *Broker) refuse(cl *mqtt.Client, deviceID, remote, class, reason string) error {
	b.denyConnect(deviceID, remote, class, reason)
	code := packets.ErrNotAuthorized // 0x87
	if cl.Properties.ProtocolVersion < 5 {
		// mochi maps this one to the 3.1.1 return code 0x05, "not authorized".
		code = packets.ErrBadUsernameOrPassword
	}
	_ = b.server.SendConnack(cl, code, false, nil)
	return errConnectDenied
}

// denyConnect counts, logs and publishes a refused connection.
func (b *Broker) denyConnect(deviceID, remote, class, reason string) {
	if deviceID != "" {
		b.devices.get(deviceID).update(func(m *Metrics) { m.AuthorizationFailures++ })
	}
	b.log.Warn("mqtt connect denied", "device", deviceID, "remote", remote, "reason", reason)
	b.events.send(EventConnectDenied, deviceID, remote, denial{Reason: reason, Class: class})
}

func (b *Broker) addSession(cl *mqtt.Client, s *session) {
	s.client = cl
	b.mu.Lock()
	b.sessions[cl.ID] = s
	b.mu.Unlock()
}

// sessionOf returns the session state of a client id.
func (b *Broker) sessionOf(clientID string) *session {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.sessions[clientID]
}

// OnConnectAuthenticate admits the clients OnConnect accepted.
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, _ packets.Packet) bool {
	s := h.b.sessionOf(cl.ID)
	return s != nil && s.client == cl
}

// OnDisconnect forgets the live client. The ACL stays while mochi keeps a
// persistent session, so queued messages are still checked on delivery.
func (h *hook) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	b := h.b
	b.mu.Lock()
	s := b.sessions[cl.ID]
	if s == nil || s.client != cl {
		b.mu.Unlock()
		return
	}
	if expire {
		delete(b.sessions, cl.ID)
	} else {
		s.client = nil
	}
	b.mu.Unlock()
	if s.device != nil {
		s.device.update(func(m *Metrics) { m.Disconnects++ })
	}
}

// OnACLCheck checks a publish (write) or a subscription filter or delivered
// topic (read) against the client's policy. Denied publishes are recorded
// here; denied subscriptions are recorded in OnSubscribe, which sees them
// first.
func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	b := h.b
	s := b.sessionOf(cl.ID)
	if s == nil {
		return false
	}
	if s.open {
		return true
	}
	if write {
		if validTopicName(topic) && allowed(s.pub, topic) {
			return true
		}
		b.denyTopic(s, EventPublishDenied, topic, "topic not allowed for publish")
		return false
	}
	return allowed(s.sub, topic)
}

// OnSubscribe records each filter of a SUBSCRIBE that OnACLCheck will
// refuse; mochi answers it with "not authorized".
func (h *hook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	b := h.b
	s := b.sessionOf(cl.ID)
	if s == nil || s.open {
		return pk
	}
	for _, f := range pk.Filters {
		if !allowed(s.sub, f.Filter) {
			b.denyTopic(s, EventSubscribeDenied, f.Filter, "topic filter not allowed for subscribe")
		}
	}
	return pk
}

func (b *Broker) denyTopic(s *session, typ, topic, reason string) {
	if s.device != nil {
		s.device.update(func(m *Metrics) { m.AuthorizationFailures++ })
	}
	msg := "mqtt publish denied"
	if typ == EventSubscribeDenied {
		msg = "mqtt subscribe denied"
	}
	b.log.Warn(msg, "device", s.info.DeviceID, "remote", s.info.Remote, "topic", topic, "reason", reason)
	b.events.send(typ, s.info.DeviceID, hostOf(s.info.Remote), denial{Topic: topic, Reason: reason, Class: s.info.Class})
}

// OnPublish applies the device's message and byte rate limits to a publish
// that passed the ACL, and counts it.
func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	s := h.b.sessionOf(cl.ID)
	if s == nil || s.device == nil {
		return pk, nil
	}
	n := uint64(len(pk.Payload))
	now := time.Now()
	var limited bool
	s.device.update(func(m *Metrics) {
		if !s.device.messages.take(now, 1) || !s.device.bytes.take(now, float64(n)) {
			limited = true
			m.RateLimited++
			return
		}
		m.MessagesIn++
		m.BytesIn += n
		m.MaxMessageSize = max(m.MaxMessageSize, n)
		m.LastSeen = now.UTC()
	})
	if !limited {
		if fn := h.b.cfg.DeviceMessages; fn != nil && !s.open {
			fn(s.info.DeviceID, pk.TopicName, bytes.Clone(pk.Payload))
		}
		return pk, nil
	}
	if m := s.device.snapshot(); m.RateLimited&(m.RateLimited-1) == 0 { // log at 1, 2, 4, …
		h.b.log.Warn("mqtt publish rate limited", "device", s.info.DeviceID, "topic", pk.TopicName, "dropped", m.RateLimited)
	}
	if cl.Properties.ProtocolVersion >= 5 && pk.FixedHeader.Qos > 0 {
		return pk, packets.ErrQuotaExceeded
	}
	return pk, packets.ErrRejectPacket
}

// OnPacketSent counts publishes delivered to a device.
func (h *hook) OnPacketSent(cl *mqtt.Client, pk packets.Packet, _ []byte) {
	if pk.FixedHeader.Type != packets.Publish {
		return
	}
	var dev *deviceState
	if s := h.b.sessionOf(cl.ID); s != nil {
		dev = s.device
	} else if d, ok := h.b.devices.lookup(cl.ID); ok && !h.b.cfg.InsecureOpenForTests {
		// A client that reads one message and disconnects at once can end
		// its session (OnDisconnect) before this hook runs for the write.
		// The client id is the device id (OnConnect insists), so the
		// delivery is still counted.
		dev = d
	}
	if dev == nil {
		return
	}
	n := uint64(len(pk.Payload))
	dev.update(func(m *Metrics) {
		m.MessagesOut++
		m.BytesOut += n
	})
}

// malformed records a connection dropped because the MQTT engine could not
// survive its bytes, and removes what the engine left of its session.
func (b *Broker) malformed(dc *deviceConn, reason string) {
	var s *session
	b.mu.Lock()
	for id, cand := range b.sessions {
		if cand.client != nil && cand.client.Net.Conn == net.Conn(dc) {
			s = cand
			delete(b.sessions, id)
			break
		}
	}
	b.mu.Unlock()
	deviceID, remote := "", hostOf(dc.RemoteAddr().String())
	if s != nil {
		deviceID = s.info.DeviceID
		cl := s.client
		cl.Stop(errMalformedPacket)
		b.server.UnsubscribeClient(cl)
		if cur, ok := b.server.Clients.Get(cl.ID); ok && cur == cl {
			b.server.Clients.Delete(cl.ID)
		}
		if s.device != nil {
			s.device.update(func(m *Metrics) { m.MalformedPackets++; m.Disconnects++ })
		}
	}
	b.log.Warn("mqtt malformed packet, connection dropped", "device", deviceID, "remote", remote, "reason", reason)
	b.events.send(EventMalformedPacket, deviceID, remote, denial{Reason: "malformed packet: " + reason})
}

var errMalformedPacket = errors.New("malformed packet")
