package web

import (
	"context"
	"time"

	"github.com/fleetward/fleetward/internal/telemetry"
)

// scoreMetrics are the anomaly score series the device page plots: the
// highest smoothed score of each summary interval against the threshold.
var scoreMetrics = []string{telemetry.MetricAnomalyScoreMax, telemetry.MetricAnomalyThreshold}

// deviceScores returns the device page's anomaly score chart data over
// the last 24 hours (x: Unix seconds), or nil when no sensor reported
// scores of the device then.
func (ui *UI) deviceScores(ctx context.Context, deviceID string, now time.Time) (map[string]any, error) {
	series, err := ui.lastDay(ctx, deviceID, scoreMetrics, now)
	if err != nil {
		return nil, err
	}
	return alignSeries(series, scoreMetrics), nil
}

// lastDay returns the device's series of metrics over the 24 hours before
// now, or none when the server keeps no measurements.
func (ui *UI) lastDay(ctx context.Context, deviceID string, metrics []string, now time.Time) (map[string][]telemetry.Point, error) {
	if ui.deps.Connectivity == nil {
		return nil, nil
	}
	return ui.deps.Connectivity.Series(ctx, deviceID, metrics, now.Add(-24*time.Hour))
}

// sensorMetrics are what an edge sensor (agent --sensor) reports of itself
// in its summaries, stored with the sensor_ prefix: the device page charts
// packets per second, signals and capture failures, and shows the latest
// of each.
var sensorMetrics = []string{"sensor_pps", "sensor_signals", "sensor_capture_errors",
	"sensor_packets", "sensor_trained", "sensor_threshold", "sensor_alerts", "sensor_capture_reopens", "sensor_capture_drops"}

// deviceSensor returns the device page's edge sensor chart data over the
// last 24 hours, with "latest" holding each metric's newest value, or nil
// when the device ran no sensor then.
func (ui *UI) deviceSensor(ctx context.Context, deviceID string, now time.Time) (map[string]any, error) {
	series, err := ui.lastDay(ctx, deviceID, sensorMetrics, now)
	if err != nil {
		return nil, err
	}
	chart := alignSeries(series, sensorMetrics)
	if chart == nil {
		return nil, nil
	}
	latest := map[string]float64{}
	for _, m := range sensorMetrics {
		if ps := series[m]; len(ps) > 0 {
			latest[m] = ps[len(ps)-1].Value
		}
	}
	chart["latest"] = latest
	return chart, nil
}
