package detect

import (
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/alert"
)

// TestApplyRulesFindsWhatScoreCaptureFinds runs a crafted Telnet scan
// mixed with UDP through the rules alone and through the whole pipeline
// with rules and no anomaly alerter: the signals and decoder counters must
// be the same, and Signals and Status must be called.
func TestApplyRulesFindsWhatScoreCaptureFinds(t *testing.T) {
	var frames []crafted
	for i := range 40 {
		frames = append(frames, crafted{time.Duration(i) * 50 * time.Millisecond, tcpFrame(t, botIP, net.IP{10, 200, 2, byte(i)}, 40000, 23, "S", nil)})
		frames = append(frames, crafted{time.Duration(i)*50*time.Millisecond + time.Millisecond, udpFrame(t, victimIP, botIP, 5000, 53, []byte("x"))})
	}
	path := writeCraftedCapture(t, frames)
	run := func(score func(PacketSource, ScoreOptions) (*ScoreResult, error)) (*ScoreResult, []alert.Signal, int) {
		t.Helper()
		r, err := OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var sigs []alert.Signal
		statuses := 0
		res, err := score(r, ScoreOptions{Rules: &Rules{}, KitNET: KitNETConfig{FMGrace: 10, ADGrace: 10}, Discard: true,
			Signals: func(s []alert.Signal) { sigs = append(sigs, s...) },
			Status:  func(ScoreResult) { statuses++ }})
		if err != nil {
			t.Fatal(err)
		}
		return res, sigs, statuses
	}
	rulesRes, rulesSigs, rulesStatuses := run(ApplyRules)
	fullRes, fullSigs, _ := run(ScoreCapture)
	if rulesRes.Packets != 80 || rulesRes.Decode != fullRes.Decode || rulesRes.Trained != 0 {
		t.Errorf("rules only: %d packets, decode %+v, trained %d; whole pipeline decode %+v", rulesRes.Packets, rulesRes.Decode, rulesRes.Trained, fullRes.Decode)
	}
	if len(rulesSigs) == 0 || rulesSigs[0].Behaviour != "telnet_scan" || !reflect.DeepEqual(rulesSigs, fullSigs) {
		t.Errorf("rules only found %+v; the whole pipeline %+v", rulesSigs, fullSigs)
	}
	if rulesStatuses == 0 {
		t.Error("Status was never called")
	}
}
