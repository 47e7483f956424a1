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
	c := ui.deps.Connectivity
	if c == nil {
		return nil, nil
	}
	series, err := c.Series(ctx, deviceID, scoreMetrics, now.Add(-24*time.Hour))
	if err != nil {
		return nil, err
	}
	return alignSeries(series, scoreMetrics), nil
}
