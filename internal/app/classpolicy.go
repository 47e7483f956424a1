package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/fleetward/fleetward/internal/broker"
	"github.com/fleetward/fleetward/internal/identity"
)

// ClassPolicy is what the devices of one class are allowed, as an operator
// writes it in the --class-policy file. Fields left out keep the defaults:
// the broker's default topics (own telemetry, inventory, events and status
// out; own commands in), TLS 1.3 only, and a 30-day certificate.
type ClassPolicy struct {
	// Publish and Subscribe are MQTT topic filters; {device} stands for
	// the connecting device's id.
	Publish   []string `json:"publish,omitempty"`
	Subscribe []string `json:"subscribe,omitempty"`
	// LegacyTLS lets the class connect with TLS 1.2 (ECDHE with AEAD
	// suites only), for devices that cannot do TLS 1.3.
	LegacyTLS bool `json:"legacy_tls,omitempty"`
	// CertificateLifetime of the class's device certificates, a Go
	// duration ("720h"); from 1h to 398 days.
	CertificateLifetime string `json:"certificate_lifetime,omitempty"`
}

// ClassPolicies is the --class-policy file: policies by device class.
type ClassPolicies struct {
	Classes map[string]ClassPolicy `json:"classes"`
}

// maxPolicyFile bounds the policy file.
const maxPolicyFile = 1 << 20

// LoadClassPolicies reads and checks a class policy file. Its errors name
// the file, the class and the field at fault.
func LoadClassPolicies(path string) (ClassPolicies, error) {
	f, err := os.Open(path)
	if err != nil {
		return ClassPolicies{}, fmt.Errorf("--class-policy: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxPolicyFile+1))
	if err != nil {
		return ClassPolicies{}, fmt.Errorf("--class-policy %s: %w", path, err)
	}
	if len(raw) > maxPolicyFile {
		return ClassPolicies{}, fmt.Errorf("--class-policy %s: larger than %d bytes", path, maxPolicyFile)
	}
	p, err := ParseClassPolicies(raw)
	if err != nil {
		return ClassPolicies{}, fmt.Errorf("--class-policy %s: %w", path, err)
	}
	return p, nil
}

// ParseClassPolicies decodes and validates a class policy document.
func ParseClassPolicies(raw []byte) (ClassPolicies, error) {
	var p ClassPolicies
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return ClassPolicies{}, fmt.Errorf("not a class policy document: %w", err)
	}
	if dec.More() {
		return ClassPolicies{}, errors.New("data after the JSON document")
	}
	var errs []error
	for class, cp := range p.Classes {
		if class == "" || len(class) > 64 || strings.TrimSpace(class) != class {
			errs = append(errs, fmt.Errorf("classes: %q is not a class name", class))
			continue
		}
		if err := cp.brokerPolicy().Validate(); err != nil {
			errs = append(errs, fmt.Errorf("classes.%s: %w", class, err))
		}
		if _, err := cp.lifetime(); err != nil {
			errs = append(errs, fmt.Errorf("classes.%s.certificate_lifetime: %w", class, err))
		}
	}
	return p, errors.Join(errs...)
}

// brokerPolicy is the class's broker policy, defaults filled in.
func (cp ClassPolicy) brokerPolicy() broker.Policy {
	p := broker.DefaultPolicy()
	if cp.Publish != nil {
		p.Publish = cp.Publish
	}
	if cp.Subscribe != nil {
		p.Subscribe = cp.Subscribe
	}
	p.Legacy = cp.LegacyTLS
	return p
}

func (cp ClassPolicy) lifetime() (time.Duration, error) {
	if cp.CertificateLifetime == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(cp.CertificateLifetime)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 720h", cp.CertificateLifetime)
	}
	if d < time.Hour || d > 398*24*time.Hour {
		return 0, fmt.Errorf("%s is outside 1h to 398 days", d)
	}
	return d, nil
}

// brokerPolicies returns the broker's policies by class.
func (p ClassPolicies) brokerPolicies() map[string]broker.Policy {
	out := map[string]broker.Policy{}
	for class, cp := range p.Classes {
		out[class] = cp.brokerPolicy()
	}
	return out
}

// caPolicies returns the CA's certificate policies by class.
func (p ClassPolicies) caPolicies() map[string]identity.ClassPolicy {
	out := map[string]identity.ClassPolicy{}
	for class, cp := range p.Classes {
		if d, _ := cp.lifetime(); d > 0 {
			out[class] = identity.ClassPolicy{Lifetime: d}
		}
	}
	return out
}
