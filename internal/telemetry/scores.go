package telemetry

import "github.com/fleetward/fleetward/internal/alert"

// Anomaly score metric names, as stored: one sample of each per score
// summary a sensor reported for the device, at the summary's end.
const (
	MetricAnomalyScoreMax  = "anomaly_score_max"  // highest smoothed score of the interval
	MetricAnomalyScoreMean = "anomaly_score_mean" // mean smoothed score of the interval
	MetricAnomalyThreshold = "anomaly_threshold"  // the sensor's alert threshold
	MetricAnomalyPackets   = "anomaly_packets"    // packets scored in the interval
)

// AnomalyMetrics lists the anomaly score metrics, in display order.
var AnomalyMetrics = []string{MetricAnomalyScoreMax, MetricAnomalyScoreMean, MetricAnomalyThreshold, MetricAnomalyPackets}

// ScoreSamples returns the measurements of a device's score summary. The
// summary is assumed valid (alert.ScoreSummary.Validate).
func ScoreSamples(deviceID string, s alert.ScoreSummary) []Sample {
	at := s.End.UTC()
	return []Sample{
		{DeviceID: deviceID, Metric: MetricAnomalyScoreMax, Source: SourceSensor, Time: at, Value: s.MaxScore},
		{DeviceID: deviceID, Metric: MetricAnomalyScoreMean, Source: SourceSensor, Time: at, Value: s.MeanScore},
		{DeviceID: deviceID, Metric: MetricAnomalyThreshold, Source: SourceSensor, Time: at, Value: s.Threshold},
		{DeviceID: deviceID, Metric: MetricAnomalyPackets, Source: SourceSensor, Time: at, Value: float64(s.Packets)},
	}
}
