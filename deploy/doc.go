// Package deploy holds no code: it is the home of the chart test (chart_test.go), which renders
// the Helm chart under helm/linkgraph with the Helm Go library and strictly decodes every object
// into the Kubernetes API types. It is a module of its own so that Helm and the Kubernetes API
// stay out of the product's dependencies.
package deploy
