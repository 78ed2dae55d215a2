package check

import (
	"regexp"
	"strings"
)

// Selector is one series selector in a PromQL expression.
type Selector struct {
	Name     string
	Matchers []Matcher
}

// Matcher is one label matcher of a selector.
type Matcher struct {
	Label, Op, Value string
}

var (
	grafanaVarRE = regexp.MustCompile(`\$(__rate_interval|__interval|__range)|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?`)
	selectorRE   = regexp.MustCompile(`([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{([^}]*)\}`)
	matcherRE    = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)
	stringRE     = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	rangeRE      = regexp.MustCompile(`\[[^\]]*\]`)
	groupingRE   = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	identRE      = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	numberRE     = regexp.MustCompile(`(^|[^A-Za-z0-9_:])\d[\d.eE+-]*[A-Za-z_]*`)
)

var promqlKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "and": true, "or": true, "unless": true, "offset": true, "inf": true, "nan": true, "atan2": true,
}

// Selectors returns the series a PromQL expression reads. It is a scanner,
// not a parser (promtool checks the syntax): enough to find every metric
// name and label matcher in rules and dashboards. Grafana variables are
// replaced first.
func Selectors(expr string) []Selector {
	expr = grafanaVarRE.ReplaceAllString(expr, "5m")
	var out []Selector
	named := map[int]bool{}
	for _, m := range selectorRE.FindAllStringSubmatchIndex(expr, -1) {
		s := Selector{}
		if m[2] >= 0 {
			s.Name = expr[m[2]:m[3]]
			named[m[2]] = true
		}
		for _, mm := range matcherRE.FindAllStringSubmatch(expr[m[4]:m[5]], -1) {
			s.Matchers = append(s.Matchers, Matcher{mm[1], mm[2], mm[3]})
		}
		out = append(out, s)
	}
	// Bare names: what remains once selectors' braces, strings, ranges and
	// grouping clauses are gone, that is neither a keyword nor a call.
	rest := selectorRE.ReplaceAllString(expr, " ")
	rest = stringRE.ReplaceAllString(rest, " ")
	rest = rangeRE.ReplaceAllString(rest, " ")
	rest = groupingRE.ReplaceAllString(rest, " ")
	rest = numberRE.ReplaceAllString(rest, "${1} ")
	for _, loc := range identRE.FindAllStringIndex(rest, -1) {
		id := rest[loc[0]:loc[1]]
		if promqlKeywords[id] || strings.HasPrefix(strings.TrimLeft(rest[loc[1]:], " \t\n"), "(") {
			continue
		}
		out = append(out, Selector{Name: id})
	}
	return out
}
