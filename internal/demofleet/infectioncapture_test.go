package demofleet

import (
	"fmt"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/alert"
)

// TestInfectionCaptureRaisesAlertsOnTheInfectedCameraOnly builds the
// demo's capture of a camera of the demo fleet and eleven other devices
// and runs the real detector on it: the camera gets the model's anomaly
// alert and the Telnet scan alert, its score summaries rise above the
// threshold after the infection, and no other device's ever do. Nothing
// else gets a signal either: not the broker, resolver or NTP server it
// talks to, nor the Telnet victim answering it. A camera alone at its
// site (as at --devices 30) gets a longer benign stretch, so that the
// model still trains before the infection.
func TestInfectionCaptureRaisesAlertsOnTheInfectedCameraOnly(t *testing.T) {
	fleet := Generate(250, 1, testNow)
	camera := ""
	for _, d := range fleet {
		if d.Class == "camera" {
			if _, ok := captureDevice(d); ok {
				camera = d.ID
				break
			}
		}
	}
	for _, others := range []int{11, 0} {
		t.Run(fmt.Sprintf("%d others", others), func(t *testing.T) {
			devs, err := CaptureDevicesOf(fleet, camera, others)
			if err != nil {
				t.Fatal(err)
			}
			if len(devs) != others+1 || devs[0].ID != camera {
				t.Fatalf("capture devices %+v, want the camera first and %d others", devs, others)
			}
			checkInfectionCapture(t, devs)
		})
	}
}

func checkInfectionCapture(t *testing.T, devs []CaptureDevice) {
	end := time.Now().Truncate(time.Second)
	frames, err := InfectionCapture{Devices: devs, Infected: 0, End: end, Seed: 7}.Frames()
	if err != nil {
		t.Fatal(err)
	}
	var sigs []alert.Signal
	var sums []alert.ScoreSummary
	began := time.Now()
	res, err := frames.Detect(func(s []alert.Signal) { sigs = append(sigs, s...) }, func(s []alert.ScoreSummary) { sums = append(sums, s...) })
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(began)
	t.Logf("%d frames (%d benign) scored in %s; threshold %.4g; %d signals, %d summaries", frames.Len(), frames.BenignPackets, took, res.Threshold, len(sigs), len(sums))
	if res.Packets != frames.Len() || res.Trained >= frames.BenignPackets {
		t.Errorf("scored %d of %d frames, trained on %d of the %d benign ones", res.Packets, frames.Len(), res.Trained, frames.BenignPackets)
	}
	cameraIP := devs[0].IP.String()
	fleetIPs := map[string]bool{}
	for _, d := range devs {
		fleetIPs[d.IP.String()] = true
	}
	behaviours := map[string]int{}
	for _, s := range sigs {
		switch {
		case s.SrcIP == cameraIP:
			if s.Time.Before(frames.InfectionStart) {
				t.Errorf("a signal before the infection: %+v", s)
			}
			behaviours[s.Behaviour]++
		case fleetIPs[s.SrcIP]:
			t.Errorf("a signal on benign device %s: %+v", s.SrcIP, s)
		default:
			t.Errorf("a %s signal on %s, outside the fleet: %s", s.Behaviour, s.SrcIP, s.Explanation)
		}
	}
	for _, want := range []string{"anomaly", "telnet_scan", "ip_flood"} {
		if behaviours[want] == 0 {
			t.Errorf("no %s signal on the camera; got %v", want, behaviours)
		}
	}
	t.Logf("camera signals by behaviour: %v", behaviours)
	above := 0
	last := time.Time{}
	peak := 0.0
	for _, s := range sums {
		last = maxTime(last, s.End)
		if s.MaxScore <= s.Threshold || !fleetIPs[s.SrcIP] {
			continue
		}
		if s.SrcIP != cameraIP {
			t.Errorf("benign device %s scored %.4g above the threshold %.4g at %s", s.SrcIP, s.MaxScore, s.Threshold, s.End)
			continue
		}
		if s.End.Before(frames.InfectionStart) {
			t.Errorf("the camera scored above the threshold before the infection: %+v", s)
		}
		above++
		peak = max(peak, s.MaxScore)
	}
	t.Logf("camera: %d summaries above the threshold, peak %.4g", above, peak)
	if above < 5 {
		t.Errorf("%d of the camera's summaries are above the threshold; want the infection's minutes to show", above)
	}
	if d := end.Sub(last); d < 0 || d > 10*time.Second {
		t.Errorf("the last summary ends at %s, the capture at %s: the plot would not end now", last, end)
	}
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
