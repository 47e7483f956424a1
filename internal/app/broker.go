package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"

	"github.com/fleetward/fleetward/internal/broker"
)

// startBroker starts the device MQTT broker with the server certificate.
// Device certificates verify against the CA's root and its unexpired
// intermediates, so a device that sends only its own certificate (as
// mosquitto_pub --cert does) is accepted. An intermediate rotated in
// later is trusted from the next start on.
func (s *Server) startBroker(ctx context.Context, cert tls.Certificate) error {
	cfg := s.Config
	bc := broker.Config{
		Addr:                     cfg.MQTTAddr,
		PlaintextInsecure:        cfg.MQTTPlaintextInsecure,
		MaxPacketSize:            cfg.MQTT.MaxPacketSize,
		MessagesPerSecond:        cfg.MQTT.MessagesPerSecond,
		BytesPerSecond:           cfg.MQTT.BytesPerSecond,
		ConnectAttemptsPerMinute: cfg.MQTT.ConnectAttemptsPerMinute,
		Policies:                 cfg.Classes.brokerPolicies(),
		DeviceMessages:           s.deviceMsgs.offer,
		Log:                      s.Log,
	}
	if !cfg.MQTTPlaintextInsecure {
		chain, err := s.CA.Chain(ctx)
		if err != nil {
			return fmt.Errorf("mqtt broker: %w", err)
		}
		pool := x509.NewCertPool()
		for _, c := range chain {
			pool.AddCert(c)
		}
		bc.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		bc.ClientCAs = pool
	} else {
		s.Log.Warn("mqtt broker WITHOUT TLS because --mqtt-plaintext-insecure is set: every device connect will be refused (no identity)", "addr", cfg.MQTTAddr)
	}
	b, err := broker.New(bc, s.access, s.Bus)
	if err != nil {
		return err
	}
	if err := b.Start(context.WithoutCancel(ctx)); err != nil {
		b.Close()
		return err
	}
	s.Broker = b
	s.access.attach(b)
	return nil
}

// MQTTAddr is the broker's listen address with its real port, or "" when
// no broker runs.
func (s *Server) MQTTAddr() string {
	if s.Broker == nil {
		return ""
	}
	return s.Broker.Addr()
}
