// Package micro holds Go micro benchmarks of the worker's per-email work
// that span packages: a whole request handled with SES answered in memory,
// and the template render alone. `make bench` runs them with the others.
package micro
