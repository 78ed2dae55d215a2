package check

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSelectors(t *testing.T) {
	tests := []struct {
		expr string
		want []Selector
	}{
		{`sum by (outcome) (rate(a_total{job=~"$worker_job",outcome="sent"}[$__rate_interval]))`,
			[]Selector{{Name: "a_total", Matchers: []Matcher{{"job", "=~", "5m"}, {"outcome", "=", "sent"}}}}},
		{`histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m]))) > 300`,
			[]Selector{{Name: "h_bucket"}}},
		{"rec:ratio_rate5m > 0.05\n  and on () sum(rate(b_total[5m])) > 0",
			[]Selector{{Name: "rec:ratio_rate5m"}, {Name: "b_total"}}},
		{`up{job=~"x|y"} == 0`,
			[]Selector{{Name: "up", Matchers: []Matcher{{"job", "=~", "x|y"}}}}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, Selectors(tt.expr)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.expr, diff)
		}
	}
}
