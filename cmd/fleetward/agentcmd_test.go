package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestAgentCommandExplainsWhatIsMissing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "agent")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a plain http server is refused", []string{"--server", "http://127.0.0.1:8443", "--device-id", "cam-1", "--data", dir}, "want an https:// URL"},
		{"no token and no stored certificate", []string{"--server", "https://127.0.0.1:1", "--device-id", "cam-1", "--data", dir}, "no enrolment token"},
		{"a token without a way to trust the server", []string{"--server", "https://127.0.0.1:1", "--device-id", "cam-1", "--data", dir, "--token", "t"}, "no trust anchor"},
		{"a malformed fingerprint", []string{"--server", "https://127.0.0.1:1", "--device-id", "cam-1", "--data", dir, "--server-fingerprint", "abc"}, "64 hex digits"},
		{"a device id that cannot be a topic level", []string{"--server", "https://127.0.0.1:1", "--device-id", "a/b", "--data", dir}, "device_id"},
		{"a sensor interface that does not exist", []string{"--server", "https://127.0.0.1:1", "--device-id", "cam-1", "--data", dir, "--sensor", "fw-no-such0"}, "fw-no-such0"},
		{"a sensor option without --sensor", []string{"--server", "https://127.0.0.1:1", "--device-id", "cam-1", "--data", dir, "--sensor-rules-only"}, "--sensor"},
		{"no promiscuous mode without --sensor", []string{"--server", "https://127.0.0.1:1", "--device-id", "cam-1", "--data", dir, "--sensor-no-promisc"}, "--sensor-no-promisc is an option of the edge sensor"},
		{"a sensor model that is not a model", []string{"--server", "https://127.0.0.1:1", "--device-id", "cam-1", "--data", dir, "--sensor", "lo", "--sensor-model", "agentcmd_test.go"}, "--sensor-model"},
		{"a sensor rule without --sensor", []string{"--server", "https://127.0.0.1:1", "--device-id", "cam-1", "--data", dir, "--sensor-rule", "syn_flood_rate=10"}, "--sensor-rule is an option of the edge sensor"},
		{"a sensor rule that does not exist", []string{"--server", "https://127.0.0.1:1", "--device-id", "cam-1", "--data", dir, "--sensor", "lo", "--sensor-rule", "syn_flood=10"}, "--sensor-rule: invalid: syn_flood: no such setting"},
		{"a negative grace period", []string{"--server", "https://127.0.0.1:1", "--device-id", "cam-1", "--data", dir, "--sensor", "lo", "--sensor-rules-only", "--sensor-fm", "-1"}, "sensor_fm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := rootCommand().Run(context.Background(), append([]string{"fleetward", "agent"}, tt.args...))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
