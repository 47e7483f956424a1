package detect

import (
	"math"
	"slices"
)

// Evaluation measures how well scores separate malicious packets (label
// true) from benign ones, the higher the score the more suspect.
type Evaluation struct {
	Benign    int     `json:"benign"`
	Malicious int     `json:"malicious"`
	AUC       float64 `json:"auc"`
	// EER is the equal error rate: the mean of the false-positive and
	// false-negative rates at the threshold where they are closest.
	EER float64 `json:"eer"`
	// TPRAt01 and TPRAt1 are the true-positive rates at the thresholds
	// Thresh01 and Thresh1 that flag at most 0.1% and 1% of the benign
	// packets.
	TPRAt01  float64 `json:"tpr_at_fpr_0.001"`
	TPRAt1   float64 `json:"tpr_at_fpr_0.01"`
	Thresh01 float64 `json:"threshold_at_fpr_0.001"`
	Thresh1  float64 `json:"threshold_at_fpr_0.01"`
}

// Evaluate computes AUC, EER and the true-positive rates at 0.1% and 1%
// false positives. scores and malicious are parallel. A packet is flagged
// when its score is strictly above the threshold. A NaN score (a model
// that could not score the packet) counts as the highest: it orders
// nowhere, and would stall the tie-grouping sweeps below.
func Evaluate(scores []float64, malicious []bool) Evaluation {
	type sample struct {
		score float64
		bad   bool
	}
	ss := make([]sample, len(scores))
	var ev Evaluation
	var benign []float64
	for i, s := range scores {
		if math.IsNaN(s) {
			s = math.Inf(1)
		}
		ss[i] = sample{s, malicious[i]}
		if malicious[i] {
			ev.Malicious++
		} else {
			ev.Benign++
			benign = append(benign, s)
		}
	}
	if ev.Benign == 0 || ev.Malicious == 0 {
		return ev
	}
	slices.SortFunc(ss, func(a, b sample) int {
		switch {
		case a.score < b.score:
			return -1
		case a.score > b.score:
			return 1
		}
		return 0
	})
	// AUC by ranks (Mann-Whitney), ties sharing their average rank.
	var rankSum float64
	for i := 0; i < len(ss); {
		j := i
		for j < len(ss) && ss[j].score == ss[i].score {
			j++
		}
		avg := float64(i+j+1) / 2
		for k := i; k < j; k++ {
			if ss[k].bad {
				rankSum += avg
			}
		}
		i = j
	}
	nm, nb := float64(ev.Malicious), float64(ev.Benign)
	ev.AUC = (rankSum - nm*(nm+1)/2) / (nm * nb)
	// EER: sweep thresholds from high to low.
	fp, tp := 0.0, 0.0
	ev.EER = 1
	best := math.Inf(1)
	for i := len(ss) - 1; i >= 0; {
		j := i
		for j >= 0 && ss[j].score == ss[i].score {
			if ss[j].bad {
				tp++
			} else {
				fp++
			}
			j--
		}
		fpr, fnr := fp/nb, 1-tp/nm
		if d := math.Abs(fpr - fnr); d < best {
			best, ev.EER = d, (fpr+fnr)/2
		}
		i = j
	}
	slices.Sort(benign)
	slices.Reverse(benign)
	tprAt := func(fpr float64) (float64, float64) {
		k := int(math.Floor(fpr * nb)) // benign packets allowed above the threshold
		thr := benign[min(k, len(benign)-1)]
		n := 0
		for _, s := range ss {
			if s.bad && s.score > thr {
				n++
			}
		}
		return float64(n) / nm, thr
	}
	ev.TPRAt01, ev.Thresh01 = tprAt(0.001)
	ev.TPRAt1, ev.Thresh1 = tprAt(0.01)
	return ev
}
