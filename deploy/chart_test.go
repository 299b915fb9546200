package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

const (
	chartDir    = "helm/linkgraph"
	releaseName = "lg"
	namespace   = "crawl"
	// fullname is the object-name prefix of release "lg" of chart "linkgraph".
	fullname = "lg-linkgraph"
	// nonroot is the uid and gid of distroless' nonroot user, the image's USER.
	nonroot = 65532
)

// roleFlags are the flags of each role that the chart may render (a subset of what
// `linkgraph <role> -h` lists; TestChartFlagsMatchBinary checks them against the binary). An
// argument that is not a flag of its role stops the pod at start-up with a usage error.
var roleFlags = func() map[string][]string {
	common := []string{"nats", "nats-creds", "nats-tls-ca", "nats-tls-cert", "nats-tls-key", "log-level"}
	return map[string][]string{
		"worker": append(slices.Clone(common), "shutdown-grace", "workers", "http-addr", "user-agent", "timeout",
			"max-body", "allow-private-networks"),
		"shard": append(slices.Clone(common), "data", "shards", "shard-nodes", "ordinal", "shard-count", "replicas",
			"http-addr", "cache-size", "scope", "delay", "per-host-concurrency", "max-depth", "ignore-robots"),
		"gateway": append(slices.Clone(common), "shutdown-grace", "grpc-addr", "http-addr", "auth-token-file", "tls-cert", "tls-key"),
		// The CronJob's `rank --nats ...` (a NATS flag selects the cluster mode), and the
		// only others that mode takes, which rank.extraArgs may add: --out=- --level=domain
		// also prints a level's ranks to the log.
		"rank": append(slices.Clone(common), "out", "level"),
		// shard.compactOnStart's init container.
		"compact": {"data", "missing-ok"},
	}
}()

// fileFlags name a file the process reads; each must lie in a mounted Secret.
var fileFlags = []string{"nats-creds", "nats-tls-ca", "nats-tls-cert", "nats-tls-key", "auth-token-file", "tls-cert", "tls-key"}

// scaledObject is the part of KEDA's keda.sh/v1alpha1 ScaledObject the chart sets. Decoding is
// strict, so a field the chart renders must be declared here.
type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		ScaleTargetRef struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Name       string `json:"name"`
		} `json:"scaleTargetRef"`
		PollingInterval *int32 `json:"pollingInterval"`
		CooldownPeriod  *int32 `json:"cooldownPeriod"`
		MinReplicaCount *int32 `json:"minReplicaCount"`
		MaxReplicaCount *int32 `json:"maxReplicaCount"`
		Triggers        []struct {
			Type string `json:"type"`
			// KEDA wants every metadata value as a string: a number here fails decoding.
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

// serviceMonitor is the part of the Prometheus Operator's monitoring.coreos.com/v1
// ServiceMonitor the chart sets.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
			Scheme        string `json:"scheme"`
			TLSConfig     *struct {
				InsecureSkipVerify bool `json:"insecureSkipVerify"`
			} `json:"tlsConfig"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// apiVersions is every kind the chart may render, with its API version.
var apiVersions = map[string]string{
	"Deployment":          "apps/v1",
	"StatefulSet":         "apps/v1",
	"CronJob":             "batch/v1",
	"Service":             "v1",
	"ServiceAccount":      "v1",
	"PodDisruptionBudget": "policy/v1",
	"Ingress":             "networking.k8s.io/v1",
	"ScaledObject":        "keda.sh/v1alpha1",
	"ServiceMonitor":      "monitoring.coreos.com/v1",
}

// object is one rendered manifest.
type object struct {
	source string // the template it came from
	kind   string
	meta   metav1.ObjectMeta
}

func (o object) String() string { return fmt.Sprintf("%s %s (%s)", o.kind, o.meta.Name, o.source) }

// release is a rendered chart, decoded. Workloads, Services and PDBs are keyed by their
// app.kubernetes.io/component label.
type release struct {
	objects         []object
	deployments     map[string]*appsv1.Deployment
	statefulSets    map[string]*appsv1.StatefulSet
	cronJobs        map[string]*batchv1.CronJob
	services        map[string]*corev1.Service
	pdbs            map[string]*policyv1.PodDisruptionBudget
	serviceAccounts []*corev1.ServiceAccount
	ingresses       []*networkingv1.Ingress
	scaledObjects   []*scaledObject
	serviceMonitors []*serviceMonitor
	notes           string
}

// loadChart loads the chart from its directory, as `helm install ./deploy/helm/linkgraph`
// does. The NATS dependency is declared but not vendored; if `helm dependency update` put
// it under charts/ here, it is dropped, so that the test renders the same with and without.
func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	ch.SetDependencies()
	return ch
}

// render renders the chart with the given values (YAML, over values.yaml) as Helm does for
// an install, in strict mode (a template reading a value that does not exist fails), and
// decodes every object.
func render(t *testing.T, valuesYAML string) (*release, error) {
	t.Helper()
	ch := loadChart(t)
	vals, err := chartutil.ReadValues([]byte(valuesYAML))
	if err != nil {
		t.Fatalf("test values: %v", err)
	}
	if err := chartutil.ProcessDependenciesWithMerge(ch, vals); err != nil {
		return nil, fmt.Errorf("dependencies: %w", err)
	}
	opts := chartutil.ReleaseOptions{Name: releaseName, Namespace: namespace, Revision: 1, IsInstall: true, IsUpgrade: false}
	top, err := chartutil.ToRenderValues(ch, vals, opts, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, err // includes values.schema.json violations
	}
	files, err := engine.Engine{Strict: true}.Render(ch, top)
	if err != nil {
		return nil, err
	}
	r := &release{
		deployments:  map[string]*appsv1.Deployment{},
		statefulSets: map[string]*appsv1.StatefulSet{},
		cronJobs:     map[string]*batchv1.CronJob{},
		services:     map[string]*corev1.Service{},
		pdbs:         map[string]*policyv1.PodDisruptionBudget{},
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		content := files[name]
		switch {
		case strings.HasSuffix(name, "NOTES.txt"):
			r.notes = content
			continue
		case !strings.HasSuffix(name, ".yaml"):
			continue
		}
		docs := releaseutil.SplitManifests(content)
		for _, key := range slices.Sorted(maps.Keys(docs)) {
			if err := r.add(path.Base(name), docs[key]); err != nil {
				t.Fatalf("%s: %v\n%s", name, err, docs[key])
			}
		}
	}
	return r, nil
}

// decodeStrict decodes one YAML document into v: duplicate keys, fields v does not have and
// trailing data are errors.
func decodeStrict(doc string, v any) error {
	js, err := yaml.YAMLToJSONStrict([]byte(doc))
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the object")
	}
	return nil
}

func (r *release) add(source, doc string) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
		return err
	}
	want, ok := apiVersions[tm.Kind]
	if !ok {
		return fmt.Errorf("kind %q is not one the test knows", tm.Kind)
	}
	if tm.APIVersion != want {
		return fmt.Errorf("%s has apiVersion %q, want %q", tm.Kind, tm.APIVersion, want)
	}
	var meta metav1.ObjectMeta
	into := func(v any, m *metav1.ObjectMeta) error {
		if err := decodeStrict(doc, v); err != nil {
			return fmt.Errorf("%s: %w", tm.Kind, err)
		}
		meta = *m
		return nil
	}
	var err error
	switch tm.Kind {
	case "Deployment":
		v := new(appsv1.Deployment)
		if err = into(v, &v.ObjectMeta); err == nil {
			err = putOnce(r.deployments, v.Labels, v)
		}
	case "StatefulSet":
		v := new(appsv1.StatefulSet)
		if err = into(v, &v.ObjectMeta); err == nil {
			err = putOnce(r.statefulSets, v.Labels, v)
		}
	case "CronJob":
		v := new(batchv1.CronJob)
		if err = into(v, &v.ObjectMeta); err == nil {
			err = putOnce(r.cronJobs, v.Labels, v)
		}
	case "Service":
		v := new(corev1.Service)
		if err = into(v, &v.ObjectMeta); err == nil {
			err = putOnce(r.services, v.Labels, v)
		}
	case "PodDisruptionBudget":
		v := new(policyv1.PodDisruptionBudget)
		if err = into(v, &v.ObjectMeta); err == nil {
			err = putOnce(r.pdbs, v.Labels, v)
		}
	case "ServiceAccount":
		v := new(corev1.ServiceAccount)
		if err = into(v, &v.ObjectMeta); err == nil {
			r.serviceAccounts = append(r.serviceAccounts, v)
		}
	case "Ingress":
		v := new(networkingv1.Ingress)
		if err = into(v, &v.ObjectMeta); err == nil {
			r.ingresses = append(r.ingresses, v)
		}
	case "ScaledObject":
		v := new(scaledObject)
		if err = into(v, &v.ObjectMeta); err == nil {
			r.scaledObjects = append(r.scaledObjects, v)
		}
	case "ServiceMonitor":
		v := new(serviceMonitor)
		if err = into(v, &v.ObjectMeta); err == nil {
			r.serviceMonitors = append(r.serviceMonitors, v)
		}
	}
	if err != nil {
		return err
	}
	r.objects = append(r.objects, object{source: source, kind: tm.Kind, meta: meta})
	return nil
}

func putOnce[T any](m map[string]T, labels map[string]string, v T) error {
	c := labels["app.kubernetes.io/component"]
	if _, dup := m[c]; dup {
		return fmt.Errorf("a second object of this kind for component %q", c)
	}
	m[c] = v
	return nil
}

// workload is what the checks need of a Deployment, a StatefulSet or a CronJob (whose
// selector is nil: the Job controller makes its own, and no selector of the chart's is
// immutable there).
type workload struct {
	kind, component string
	selector        *metav1.LabelSelector
	template        corev1.PodTemplateSpec
}

// batch reports whether the workload's pods run to completion.
func (w workload) batch() bool { return w.kind == "CronJob" }

func (r *release) workloads() []workload {
	var ws []workload
	for _, c := range slices.Sorted(maps.Keys(r.deployments)) {
		d := r.deployments[c]
		ws = append(ws, workload{"Deployment", c, d.Spec.Selector, d.Spec.Template})
	}
	for _, c := range slices.Sorted(maps.Keys(r.statefulSets)) {
		s := r.statefulSets[c]
		ws = append(ws, workload{"StatefulSet", c, s.Spec.Selector, s.Spec.Template})
	}
	for _, c := range slices.Sorted(maps.Keys(r.cronJobs)) {
		cj := r.cronJobs[c]
		ws = append(ws, workload{"CronJob", c, nil, cj.Spec.JobTemplate.Spec.Template})
	}
	return ws
}

// container returns the one container of a component's pods.
func (r *release) container(t *testing.T, component string) (*corev1.PodSpec, *corev1.Container) {
	t.Helper()
	for _, w := range r.workloads() {
		if w.component == component {
			spec := w.template.Spec
			if len(spec.Containers) != 1 {
				t.Fatalf("%s: %d containers, want 1", component, len(spec.Containers))
			}
			return &spec, &spec.Containers[0]
		}
	}
	t.Fatalf("no workload of component %q", component)
	return nil, nil
}

// flags parses a container's args: the role, then only "--flag" and "--flag=value" items.
func flags(t *testing.T, c *corev1.Container) (role string, fl map[string]string) {
	t.Helper()
	if len(c.Command) != 0 {
		t.Errorf("%s: command %q overrides the image's entrypoint", c.Name, c.Command)
	}
	if len(c.Args) == 0 {
		t.Fatalf("%s: no args", c.Name)
	}
	role, fl = c.Args[0], map[string]string{}
	for _, a := range c.Args[1:] {
		name, value, hasValue := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") || name == "" {
			t.Errorf("%s: argument %q is not --flag or --flag=value", c.Name, a)
			continue
		}
		if _, dup := fl[name]; dup {
			t.Errorf("%s: --%s given twice", c.Name, name)
		}
		if !hasValue {
			value = "true"
		}
		fl[name] = value
	}
	return role, fl
}

// checkInvariants holds for every values set: labels, selectors, references between
// objects, security, probes, grace periods, and flags against mounts.
func checkInvariants(t *testing.T, r *release) {
	t.Helper()
	if len(r.objects) == 0 {
		t.Fatal("nothing rendered")
	}
	for _, o := range r.objects {
		checkStandardLabels(t, o.String(), o.meta.Labels)
		if o.meta.Namespace != "" {
			t.Errorf("%s: sets namespace %q; Helm's --namespace should decide", o, o.meta.Namespace)
		}
		if !strings.HasPrefix(o.meta.Name, fullname) {
			t.Errorf("%s: name does not start with %q", o, fullname)
		}
	}
	for _, c := range []string{"worker", "shard", "gateway"} {
		if _, ok := r.services[c]; !ok {
			t.Errorf("no Service for the %ss", c)
		}
	}
	if _, ok := r.statefulSets["shard"]; !ok {
		t.Error("no shard StatefulSet")
	}
	for _, c := range []string{"worker", "gateway"} {
		if _, ok := r.deployments[c]; !ok {
			t.Errorf("no %s Deployment", c)
		}
	}

	for _, w := range r.workloads() {
		name := w.kind + " " + w.component
		checkStandardLabels(t, name+" pod template", w.template.Labels)
		if w.template.Labels["app.kubernetes.io/component"] != w.component {
			t.Errorf("%s: pods labeled component %q", name, w.template.Labels["app.kubernetes.io/component"])
		}
		if !w.batch() {
			sel, err := metav1.LabelSelectorAsSelector(w.selector)
			if err != nil || sel.Empty() {
				t.Errorf("%s: bad or empty selector %v: %v", name, w.selector, err)
			} else if !sel.Matches(labels.Set(w.template.Labels)) {
				t.Errorf("%s: selector %v does not match its pod labels", name, w.selector)
			}
			for _, k := range []string{"app.kubernetes.io/version", "helm.sh/chart"} {
				if _, ok := w.selector.MatchLabels[k]; ok {
					t.Errorf("%s: selector has %s, which changes between releases (selectors are immutable)", name, k)
				}
			}
		}
		checkPod(t, name, w, &w.template.Spec)
	}
	for c, cj := range r.cronJobs {
		checkCronJob(t, c, cj)
	}

	// Every Service, PDB and the ScaledObject points at a workload of the release.
	for c, svc := range r.services {
		w := r.selected(labels.SelectorFromSet(svc.Spec.Selector))
		if len(w) != 1 || w[0].component != c {
			t.Errorf("Service %s selects %v, want the %s pods", svc.Name, componentsOf(w), c)
			continue
		}
		ports := containerPorts(w[0].template.Spec.Containers[0])
		for _, p := range svc.Spec.Ports {
			if p.TargetPort.Type != intstr.String || ports[p.TargetPort.StrVal] == 0 {
				t.Errorf("Service %s port %s: target %v is not a named port of the pods (%v)", svc.Name, p.Name, p.TargetPort.String(), ports)
			}
		}
	}
	for c, pdb := range r.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		if w := r.selected(sel); len(w) != 1 || w[0].component != c {
			t.Errorf("PodDisruptionBudget %s selects %v, want the %s pods", pdb.Name, componentsOf(w), c)
		}
		if (pdb.Spec.MinAvailable == nil) == (pdb.Spec.MaxUnavailable == nil) {
			t.Errorf("PodDisruptionBudget %s: set exactly one of minAvailable and maxUnavailable", pdb.Name)
		}
	}
	for _, so := range r.scaledObjects {
		ref := so.Spec.ScaleTargetRef
		d, ok := r.deployments["worker"]
		if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || !ok || ref.Name != d.Name {
			t.Errorf("ScaledObject %s targets %+v, want the worker Deployment", so.Name, ref)
		}
	}
	for _, ing := range r.ingresses {
		for _, rule := range ing.Spec.Rules {
			for _, p := range rule.HTTP.Paths {
				b := p.Backend.Service
				gw := r.services["gateway"]
				if b == nil || gw == nil || b.Name != gw.Name || !slices.ContainsFunc(gw.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Name == b.Port.Name }) {
					t.Errorf("Ingress %s: backend %+v is not a port of the gateway Service", ing.Name, b)
				}
			}
		}
	}
	for _, sm := range r.serviceMonitors {
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		scraped := map[string]bool{}
		for _, ep := range sm.Spec.Endpoints {
			for c, svc := range r.services {
				if sel.Matches(labels.Set(svc.Labels)) && slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
					scraped[c] = true
				}
			}
		}
		if got := slices.Sorted(maps.Keys(scraped)); !slices.Equal(got, []string{"gateway", "shard", "worker"}) {
			t.Errorf("ServiceMonitor %s scrapes %v, want gateway, shard and worker", sm.Name, got)
		}
	}
}

func checkStandardLabels(t *testing.T, what string, l map[string]string) {
	t.Helper()
	for k, want := range map[string]string{
		"app.kubernetes.io/name":       "linkgraph",
		"app.kubernetes.io/instance":   releaseName,
		"app.kubernetes.io/managed-by": "Helm",
		"app.kubernetes.io/component":  "",
		"app.kubernetes.io/version":    "",
	} {
		got, ok := l[k]
		switch {
		case !ok || got == "":
			t.Errorf("%s: no label %s", what, k)
		case want != "" && got != want:
			t.Errorf("%s: label %s=%q, want %q", what, k, got, want)
		}
	}
}

// checkPod checks what every pod of the chart must be: non-root and locked down, probed
// (servers) or run to completion without restarts (the CronJob's), with a grace period
// longer than the process's drain, and with every file flag backed by a mounted Secret.
func checkPod(t *testing.T, name string, w workload, spec *corev1.PodSpec) {
	t.Helper()
	component := w.component
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != nonroot ||
		psc.FSGroup == nil || *psc.FSGroup != nonroot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod securityContext %+v: want runAsNonRoot, uid and fsGroup %d, seccomp RuntimeDefault", name, psc, nonroot)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: mounts a service account token it never uses", name)
	}
	if want := fullname; spec.ServiceAccountName != want {
		t.Errorf("%s: serviceAccountName %q, want %q", name, spec.ServiceAccountName, want)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", name, len(spec.Containers))
	}
	c := &spec.Containers[0]
	checkContainerSecurity(t, name, c)
	// The only init container the chart renders: shard.compactOnStart's.
	for i := range spec.InitContainers {
		ic := &spec.InitContainers[i]
		checkContainerSecurity(t, name+" init container "+ic.Name, ic)
		role, fl := flags(t, ic)
		if component != "shard" || role != "compact" || !maps.Equal(fl, map[string]string{"data": "/data", "missing-ok": "true"}) {
			t.Errorf("%s: init container %s runs %q %v; only a shard may have one, running compact --data=/data --missing-ok", name, ic.Name, role, fl)
		}
		if !slices.ContainsFunc(ic.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "data" && m.MountPath == "/data" && !m.ReadOnly }) ||
			!slices.ContainsFunc(ic.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/tmp" }) {
			t.Errorf("%s: init container %s mounts %v, want the data volume at /data and a writable /tmp", name, ic.Name, ic.VolumeMounts)
		}
		if !reflect.DeepEqual(ic.Resources, c.Resources) {
			t.Errorf("%s: init container %s has resources %v, want the node's %v", name, ic.Name, ic.Resources, c.Resources)
		}
	}
	if w.batch() {
		// rank serves nothing a probe could ask; a retry is a new pod (see checkCronJob).
		if c.LivenessProbe != nil || c.ReadinessProbe != nil || c.StartupProbe != nil || len(c.Ports) != 0 {
			t.Errorf("%s: a run-to-completion pod with probes or ports", name)
		}
		if spec.RestartPolicy != corev1.RestartPolicyNever {
			t.Errorf("%s: restartPolicy %q, want Never", name, spec.RestartPolicy)
		}
	} else if c.LivenessProbe == nil || c.ReadinessProbe == nil {
		t.Errorf("%s: liveness and readiness probes are required", name)
	}

	role, fl := flags(t, c)
	if role != component {
		t.Errorf("%s: runs %q, want %q", name, role, component)
	}
	known := roleFlags[role]
	for f := range fl {
		if !slices.Contains(known, f) {
			t.Errorf("%s: --%s is not a flag of linkgraph %s", name, f, role)
		}
	}
	if !strings.HasPrefix(fl["nats"], "nats://") && !strings.HasPrefix(fl["nats"], "tls://") {
		t.Errorf("%s: --nats=%q", name, fl["nats"])
	}
	// Workers and gateways drain for --shutdown-grace; a shard node has no such flag and
	// needs the time to commit the batches in hand and close Pebble; rank has nothing to
	// drain (it stops at once on SIGTERM), so only some grace period is asked of it.
	var grace time.Duration
	switch {
	case slices.Contains(roleFlags[role], "shutdown-grace"):
		var err error
		if grace, err = time.ParseDuration(fl["shutdown-grace"]); err != nil {
			t.Errorf("%s: --shutdown-grace: %v", name, err)
		}
	case role == "shard":
		grace = 25 * time.Second
	}
	if tg := spec.TerminationGracePeriodSeconds; tg == nil || time.Duration(*tg)*time.Second <= grace {
		t.Errorf("%s: terminationGracePeriodSeconds %s does not exceed the drain (%v): the kubelet would kill it",
			name, ptrString(tg), grace)
	}

	// Each file flag points into a read-only mount of a Secret volume that projects that
	// file; each Secret volume is there for some flag.
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	used := map[string]bool{}
	for _, f := range fileFlags {
		file, ok := fl[f]
		if !ok {
			continue
		}
		found := false
		for _, m := range c.VolumeMounts {
			rel, ok := strings.CutPrefix(file, m.MountPath+"/")
			if !ok {
				continue
			}
			found = true
			v := volumes[m.Name]
			switch {
			case v.Secret == nil:
				t.Errorf("%s: --%s=%s is in volume %s, which is not a Secret", name, f, file, m.Name)
			case !m.ReadOnly:
				t.Errorf("%s: the mount of Secret volume %s is writable", name, m.Name)
			case !slices.ContainsFunc(v.Secret.Items, func(it corev1.KeyToPath) bool { return it.Path == rel }):
				t.Errorf("%s: --%s=%s: Secret %s projects %v, not %s", name, f, file, v.Secret.SecretName, v.Secret.Items, rel)
			}
			used[m.Name] = true
		}
		if !found {
			t.Errorf("%s: --%s=%s is in no volume mount", name, f, file)
		}
	}
	for _, m := range c.VolumeMounts {
		if v := volumes[m.Name]; v.Secret != nil && !used[m.Name] {
			t.Errorf("%s: Secret volume %s is mounted at %s but no flag reads it", name, m.Name, m.MountPath)
		}
		if _, ok := volumes[m.Name]; !ok && m.Name != "data" {
			t.Errorf("%s: mount of volume %s, which the pod does not have", name, m.Name)
		}
	}
	if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/tmp" }) {
		t.Errorf("%s: no writable /tmp beside the read-only root filesystem", name)
	}
}

// checkContainerSecurity checks that a container runs locked down.
func checkContainerSecurity(t *testing.T, name string, c *corev1.Container) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Privileged != nil && *sc.Privileged ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("%s: container securityContext %+v: want non-root, read-only root, no escalation, all capabilities dropped", name, sc)
	}
}

// checkCronJob checks what every CronJob of the chart must be: a name that leaves room for
// the Job names made from it, labeled Jobs, runs that never overlap, bounded retries and
// run time, and a pod failure policy that names the pod's container.
func checkCronJob(t *testing.T, component string, cj *batchv1.CronJob) {
	t.Helper()
	name := "CronJob " + component
	// The Job controller names each Job "<cronjob>-<minutes since the epoch>", and the API
	// server refuses a CronJob name longer than 52 characters for that reason.
	if len(cj.Name) > 52 {
		t.Errorf("%s: name %q is %d characters, more than a CronJob may have (52)", name, cj.Name, len(cj.Name))
	}
	checkStandardLabels(t, name+" job template", cj.Spec.JobTemplate.Labels)
	s := cj.Spec
	if s.ConcurrencyPolicy != batchv1.ForbidConcurrent {
		t.Errorf("%s: concurrencyPolicy %q, want Forbid: two runs would each hold the whole host graph", name, s.ConcurrencyPolicy)
	}
	if s.StartingDeadlineSeconds == nil || *s.StartingDeadlineSeconds < 10 {
		t.Errorf("%s: startingDeadlineSeconds %s; unset, 100 missed runs stop the CronJob for good, and under 10 may skip runs", name, ptrString(s.StartingDeadlineSeconds))
	}
	for what, limit := range map[string]*int32{"successfulJobsHistoryLimit": s.SuccessfulJobsHistoryLimit, "failedJobsHistoryLimit": s.FailedJobsHistoryLimit} {
		if limit == nil || *limit > 10 {
			t.Errorf("%s: %s %s, want a small number", name, what, ptrString(limit))
		}
	}
	js := s.JobTemplate.Spec
	if js.BackoffLimit == nil || js.ActiveDeadlineSeconds == nil || *js.ActiveDeadlineSeconds <= 0 {
		t.Errorf("%s: backoffLimit %s, activeDeadlineSeconds %s: a run must be bounded in retries and time", name, ptrString(js.BackoffLimit), ptrString(js.ActiveDeadlineSeconds))
	}
	containers := js.Template.Spec.Containers
	if pfp := js.PodFailurePolicy; pfp != nil {
		for _, rule := range pfp.Rules {
			if e := rule.OnExitCodes; e != nil && (e.ContainerName == nil || len(containers) != 1 || *e.ContainerName != containers[0].Name) {
				t.Errorf("%s: podFailurePolicy rule on the exit codes of container %s, not the pod's", name, ptrString(e.ContainerName))
			}
		}
	}
}

func ptrString[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

// selected returns the workloads whose pods a selector matches.
func (r *release) selected(sel labels.Selector) []workload {
	var ws []workload
	for _, w := range r.workloads() {
		if sel.Matches(labels.Set(w.template.Labels)) {
			ws = append(ws, w)
		}
	}
	return ws
}

func componentsOf(ws []workload) []string {
	var cs []string
	for _, w := range ws {
		cs = append(cs, w.component)
	}
	return cs
}

func containerPorts(c corev1.Container) map[string]int32 {
	ps := map[string]int32{}
	for _, p := range c.Ports {
		ps[p.Name] = p.ContainerPort
	}
	return ps
}

// httpProbe checks a probe is an HTTP GET of path on the container's port number port.
func httpProbe(t *testing.T, what string, c *corev1.Container, p *corev1.Probe, path string, port int32, scheme corev1.URIScheme) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s: %+v, want httpGet %s on %d", what, p, path, port)
		return
	}
	got := p.HTTPGet.Port.IntVal
	if p.HTTPGet.Port.Type == intstr.String {
		got = containerPorts(*c)[p.HTTPGet.Port.StrVal]
	}
	if p.HTTPGet.Path != path || got != port {
		t.Errorf("%s: httpGet %s on %d, want %s on %d", what, p.HTTPGet.Path, got, path, port)
	}
	if s := p.HTTPGet.Scheme; s != scheme && !(s == "" && scheme == corev1.URISchemeHTTP) {
		t.Errorf("%s: scheme %q, want %q", what, s, scheme)
	}
}

func grpcProbe(t *testing.T, what string, p *corev1.Probe, port int32) {
	t.Helper()
	if p == nil || p.GRPC == nil || p.GRPC.Port != port || p.HTTPGet != nil || p.TCPSocket != nil || p.Exec != nil {
		t.Errorf("%s: %+v, want a gRPC probe on %d", what, p, port)
	}
}

// checkStandardProbes checks the probes of the worker and shard pods, and the gateway's
// gRPC probes (its probes without TLS).
func checkStandardProbes(t *testing.T, r *release) {
	t.Helper()
	for _, comp := range []string{"worker", "shard"} {
		_, c := r.container(t, comp)
		if containerPorts(*c)["metrics"] != 9090 {
			t.Errorf("%s: ports %v, want metrics on 9090", comp, c.Ports)
		}
		httpProbe(t, comp+" liveness", c, c.LivenessProbe, "/healthz", 9090, corev1.URISchemeHTTP)
		httpProbe(t, comp+" readiness", c, c.ReadinessProbe, "/readyz", 9090, corev1.URISchemeHTTP)
		if _, fl := flags(t, c); fl["http-addr"] != ":9090" {
			t.Errorf("%s: --http-addr=%q, want :9090", comp, fl["http-addr"])
		}
	}
	_, c := r.container(t, "shard")
	httpProbe(t, "shard startup", c, c.StartupProbe, "/healthz", 9090, corev1.URISchemeHTTP)
	if p := c.StartupProbe; p != nil && time.Duration(p.FailureThreshold*p.PeriodSeconds)*time.Second < 10*time.Minute {
		t.Errorf("shard startup probe gives up after %ds; opening Pebble after a crash needs minutes", p.FailureThreshold*p.PeriodSeconds)
	}
}

func checkGatewayGRPCProbes(t *testing.T, r *release) {
	t.Helper()
	_, c := r.container(t, "gateway")
	grpcProbe(t, "gateway liveness", c.LivenessProbe, 7070)
	grpcProbe(t, "gateway readiness", c.ReadinessProbe, 7070)
}

// wantFlags checks flags of a component's container (value "" means absent).
func wantFlags(t *testing.T, r *release, component string, want map[string]string) {
	t.Helper()
	_, c := r.container(t, component)
	_, fl := flags(t, c)
	for f, v := range want {
		got, ok := fl[f]
		switch {
		case v == "" && ok:
			t.Errorf("%s: --%s=%s given, want it absent", component, f, got)
		case v != "" && got != v:
			t.Errorf("%s: --%s=%q, want %q", component, f, got, v)
		}
	}
}

func TestChartRenders(t *testing.T) {
	tests := []struct {
		name    string
		values  string
		wantErr string // a substring of the render error; "" for success
		check   func(t *testing.T, r *release)
	}{
		{
			name: "defaults",
			check: func(t *testing.T, r *release) {
				if spec, _ := r.container(t, "shard"); len(spec.InitContainers) != 0 {
					t.Errorf("shard: %d init containers, want none unless shard.compactOnStart", len(spec.InitContainers))
				}
				checkStandardProbes(t, r)
				checkGatewayGRPCProbes(t, r)
				w := r.deployments["worker"]
				if w.Spec.Replicas == nil || *w.Spec.Replicas != 2 {
					t.Errorf("worker replicas %s, want 2", ptrString(w.Spec.Replicas))
				}
				wantFlags(t, r, "worker", map[string]string{
					"nats": "nats://nats:4222", "workers": "16", "shutdown-grace": "25s", "log-level": "info",
					"nats-creds": "", "nats-tls-ca": "", "user-agent": "", "allow-private-networks": "",
				})
				wantFlags(t, r, "shard", map[string]string{
					"shards": "auto", "shard-nodes": "3", "shard-count": "64", "replicas": "1", "data": "/data",
					"scope": "host", "delay": "1s", "per-host-concurrency": "1", "max-depth": "0", "ignore-robots": "", "ordinal": "",
					"shutdown-grace": "",
				})
				wantFlags(t, r, "gateway", map[string]string{
					"grpc-addr": ":7070", "http-addr": ":7071", "auth-token-file": "", "tls-cert": "", "tls-key": "",
				})

				s := r.statefulSets["shard"]
				if s.Spec.PodManagementPolicy != appsv1.ParallelPodManagement || s.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType {
					t.Errorf("shard: podManagementPolicy %q, updateStrategy %q; want Parallel, RollingUpdate", s.Spec.PodManagementPolicy, s.Spec.UpdateStrategy.Type)
				}
				if hs := r.services["shard"]; s.Spec.ServiceName != hs.Name || hs.Spec.ClusterIP != corev1.ClusterIPNone {
					t.Errorf("shard: serviceName %q, Service %s clusterIP %q; want the headless Service", s.Spec.ServiceName, hs.Name, hs.Spec.ClusterIP)
				}
				checkPVC(t, r, "50Gi", nil)

				gw := r.services["gateway"]
				ports := map[string]int32{}
				for _, p := range gw.Spec.Ports {
					ports[p.Name] = p.Port
				}
				if gw.Spec.Type != corev1.ServiceTypeClusterIP || ports["grpc"] != 7070 || ports["http"] != 7071 {
					t.Errorf("gateway Service %s ports %v, want ClusterIP grpc 7070, http 7071", gw.Spec.Type, ports)
				}
				_, gc := r.container(t, "gateway")
				if p := containerPorts(*gc); p["grpc"] != 7070 || p["http"] != 7071 {
					t.Errorf("gateway container ports %v", p)
				}

				if p := r.pdbs["shard"]; p == nil || p.Spec.MaxUnavailable == nil || p.Spec.MaxUnavailable.IntValue() != 1 {
					t.Errorf("shard PDB %+v, want maxUnavailable 1", p)
				}
				if p := r.pdbs["gateway"]; p == nil || p.Spec.MinAvailable == nil || p.Spec.MinAvailable.IntValue() != 1 {
					t.Errorf("gateway PDB %+v, want minAvailable 1 (2 replicas)", p)
				}
				if _, ok := r.pdbs["worker"]; ok {
					t.Error("worker PDB rendered, want it off by default")
				}
				if len(r.scaledObjects)+len(r.serviceMonitors)+len(r.ingresses) != 0 {
					t.Error("optional objects (ScaledObject, ServiceMonitor, Ingress) rendered by default")
				}
				if len(r.serviceAccounts) != 1 || r.serviceAccounts[0].Name != fullname {
					t.Errorf("%d ServiceAccounts, want one named %s", len(r.serviceAccounts), fullname)
				}
				checkRankDefaults(t, r)
				for _, comp := range []string{"worker", "shard", "gateway", "rank"} {
					_, c := r.container(t, comp)
					if c.Image != "ghcr.io/linkgraph/linkgraph:0.1.0" {
						t.Errorf("%s: image %q", comp, c.Image)
					}
					if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
						return e.Name == "GOMEMLIMIT" && e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil
					}) {
						t.Errorf("%s: no GOMEMLIMIT from the memory limit", comp)
					}
				}
				for _, want := range []string{
					"exec deploy/lg-linkgraph-gateway -- /linkgraph seed --nats=nats://nats:4222 https://example.com/",
					"linkgraph backlinks --server lg-linkgraph-gateway.crawl.svc:7070 https://example.com/",
					`ranking   cronjob/lg-linkgraph-rank: ranks hosts and domains at "17 3 * * *"`,
					"kubectl create job --from=cronjob/lg-linkgraph-rank rank-now -n crawl",
				} {
					if !strings.Contains(r.notes, want) {
						t.Errorf("NOTES.txt lacks %q:\n%s", want, r.notes)
					}
				}
			},
		},
		{
			name: "KEDA scales the workers",
			values: `
worker:
  keda:
    enabled: true
    natsServerMonitoringEndpoint: nats-headless.nats.svc:8222
    minReplicaCount: 0
    maxReplicaCount: 50
    activationLagThreshold: 5
`,
			check: func(t *testing.T, r *release) {
				if rep := r.deployments["worker"].Spec.Replicas; rep != nil {
					t.Errorf("worker Deployment sets replicas %d; KEDA owns it", *rep)
				}
				if len(r.scaledObjects) != 1 {
					t.Fatalf("%d ScaledObjects, want 1", len(r.scaledObjects))
				}
				so := r.scaledObjects[0].Spec
				got := fmt.Sprintf("replicas %s..%s, polling %s, cooldown %s", ptrString(so.MinReplicaCount),
					ptrString(so.MaxReplicaCount), ptrString(so.PollingInterval), ptrString(so.CooldownPeriod))
				if want := "replicas 0..50, polling 15, cooldown 300"; got != want {
					t.Errorf("ScaledObject %s, want %s", got, want)
				}
				if len(so.Triggers) != 1 {
					t.Fatalf("%d triggers, want 1", len(so.Triggers))
				}
				tr := so.Triggers[0]
				want := map[string]string{
					"natsServerMonitoringEndpoint": "nats-headless.nats.svc:8222",
					"account":                      "$G",
					"stream":                       "FETCH",
					"consumer":                     "workers",
					"lagThreshold":                 "100",
					"activationLagThreshold":       "5",
					"useHttps":                     "false",
				}
				if tr.Type != "nats-jetstream" || !maps.Equal(tr.Metadata, want) {
					t.Errorf("trigger %s %v, want nats-jetstream %v", tr.Type, tr.Metadata, want)
				}
			},
		},
		{
			name:    "KEDA with an external NATS needs its monitoring endpoint",
			values:  "worker: {keda: {enabled: true}}",
			wantErr: "worker.keda.natsServerMonitoringEndpoint is required",
		},
		{
			name: "NATS subchart enabled but not vendored",
			values: `
nats: {enabled: true}
streamReplicas: 3
worker: {keda: {enabled: true}}
`,
			check: func(t *testing.T, r *release) {
				for _, comp := range []string{"worker", "shard", "gateway", "rank"} {
					wantFlags(t, r, comp, map[string]string{"nats": "nats://lg-nats.crawl.svc:4222"})
				}
				wantFlags(t, r, "shard", map[string]string{"replicas": "3"})
				if strings.Contains(r.notes, "set streamReplicas=3") {
					t.Errorf("NOTES.txt asks for streamReplicas=3, which is set:\n%s", r.notes)
				}
				if ep := r.scaledObjects[0].Spec.Triggers[0].Metadata["natsServerMonitoringEndpoint"]; ep != "lg-nats-headless.crawl.svc:8222" {
					t.Errorf("KEDA polls %q, want the subchart's headless Service", ep)
				}
			},
		},
		{
			name:   "NATS subchart with unreplicated streams",
			values: "nats: {enabled: true}",
			check: func(t *testing.T, r *release) {
				if !strings.Contains(r.notes, "the NATS subchart runs 3 servers but streamReplicas is 1: set streamReplicas=3") {
					t.Errorf("NOTES.txt does not ask for replicated streams:\n%s", r.notes)
				}
			},
		},
		{
			name: "external NATS with credentials and mutual TLS",
			values: `
nats:
  url: tls://nats-0.nats:4222,tls://nats-1.nats:4222
  credsSecret: crawler-creds
  credsKey: user.creds
  tls: {secret: nats-client-tls}
`,
			check: func(t *testing.T, r *release) {
				for _, comp := range []string{"worker", "shard", "gateway", "rank"} {
					wantFlags(t, r, comp, map[string]string{
						"nats":          "tls://nats-0.nats:4222,tls://nats-1.nats:4222",
						"nats-creds":    "/etc/linkgraph/nats-creds/nats.creds",
						"nats-tls-ca":   "/etc/linkgraph/nats-tls/ca.crt",
						"nats-tls-cert": "/etc/linkgraph/nats-tls/tls.crt",
						"nats-tls-key":  "/etc/linkgraph/nats-tls/tls.key",
					})
					spec, _ := r.container(t, comp)
					wantSecretVolume(t, comp, spec, "nats-creds", "crawler-creds", map[string]string{"user.creds": "nats.creds"})
					wantSecretVolume(t, comp, spec, "nats-tls", "nats-client-tls", map[string]string{"ca.crt": "ca.crt", "tls.crt": "tls.crt", "tls.key": "tls.key"})
				}
				if !strings.Contains(r.notes, "seed --nats=tls://nats-0.nats:4222,tls://nats-1.nats:4222 --nats-creds=/etc/linkgraph/nats-creds/nats.creds --nats-tls-ca=") {
					t.Errorf("NOTES.txt's seed command lacks the NATS credentials and TLS flags:\n%s", r.notes)
				}
			},
		},
		{
			name:   "NATS TLS with a CA only",
			values: "nats: {tls: {secret: nats-ca, ca: root.pem, cert: ''}}",
			check: func(t *testing.T, r *release) {
				wantFlags(t, r, "shard", map[string]string{
					"nats-tls-ca": "/etc/linkgraph/nats-tls/ca.crt", "nats-tls-cert": "", "nats-tls-key": "",
				})
				spec, _ := r.container(t, "shard")
				wantSecretVolume(t, "shard", spec, "nats-tls", "nats-ca", map[string]string{"root.pem": "ca.crt"})
			},
		},
		{
			name: "gateway with auth, TLS and an Ingress",
			values: `
gateway:
  auth: {existingSecret: gw-token, key: bearer}
  tls: {existingSecret: gw-tls}
  ingress:
    enabled: true
    className: nginx
    annotations: {nginx.ingress.kubernetes.io/backend-protocol: HTTPS}
    hosts: [{host: links.example.org, paths: [{path: /v1, pathType: Prefix}]}]
    tls: [{secretName: links-tls, hosts: [links.example.org]}]
serviceMonitor: {enabled: true}
`,
			check: func(t *testing.T, r *release) {
				wantFlags(t, r, "gateway", map[string]string{
					"auth-token-file": "/etc/linkgraph/token/token",
					"tls-cert":        "/etc/linkgraph/tls/tls.crt",
					"tls-key":         "/etc/linkgraph/tls/tls.key",
				})
				spec, c := r.container(t, "gateway")
				wantSecretVolume(t, "gateway", spec, "token", "gw-token", map[string]string{"bearer": "token"})
				wantSecretVolume(t, "gateway", spec, "tls", "gw-tls", map[string]string{"tls.crt": "tls.crt", "tls.key": "tls.key"})
				// The kubelet's gRPC probe cannot do TLS: HTTPS probes on the HTTP port.
				httpProbe(t, "gateway liveness", c, c.LivenessProbe, "/healthz", 7071, corev1.URISchemeHTTPS)
				httpProbe(t, "gateway readiness", c, c.ReadinessProbe, "/readyz", 7071, corev1.URISchemeHTTPS)
				for _, comp := range []string{"worker", "shard", "rank"} {
					if _, wc := r.container(t, comp); slices.ContainsFunc(wc.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "token" || m.Name == "tls" }) {
						t.Errorf("%s mounts the gateway's secrets", comp)
					}
				}
				if len(r.ingresses) != 1 {
					t.Fatalf("%d Ingresses, want 1", len(r.ingresses))
				}
				ing := r.ingresses[0].Spec
				if ing.IngressClassName == nil || *ing.IngressClassName != "nginx" || len(ing.TLS) != 1 || ing.TLS[0].SecretName != "links-tls" ||
					len(ing.Rules) != 1 || ing.Rules[0].Host != "links.example.org" || ing.Rules[0].HTTP.Paths[0].Backend.Service.Port.Name != "http" {
					t.Errorf("Ingress spec %+v", ing)
				}
				ep := r.serviceMonitors[0].Spec.Endpoints[1]
				if ep.Port != "http" || ep.Scheme != "https" || ep.TLSConfig == nil {
					t.Errorf("gateway scrape %+v, want https", ep)
				}
				if strings.Contains(r.notes, "clear text") {
					t.Error("NOTES.txt warns of a plaintext token although TLS is on")
				}
			},
		},
		{
			name:   "gateway auth without TLS keeps gRPC probes and warns",
			values: "gateway: {auth: {existingSecret: gw-token}}",
			check: func(t *testing.T, r *release) {
				checkGatewayGRPCProbes(t, r)
				wantFlags(t, r, "gateway", map[string]string{"auth-token-file": "/etc/linkgraph/token/token", "tls-cert": ""})
				if !strings.Contains(r.notes, "clear text") {
					t.Error("NOTES.txt does not warn that tokens travel in clear text")
				}
			},
		},
		{
			name:   "one gateway replica has no PDB",
			values: "gateway: {replicas: 1}",
			check: func(t *testing.T, r *release) {
				if _, ok := r.pdbs["gateway"]; ok {
					t.Error("a PDB with minAvailable 1 over a single gateway would block every node drain")
				}
			},
		},
		{
			name: "ServiceMonitor",
			values: `
serviceMonitor: {enabled: true, interval: 15s, scrapeTimeout: 10s, labels: {release: prom}}
`,
			check: func(t *testing.T, r *release) {
				if len(r.serviceMonitors) != 1 {
					t.Fatalf("%d ServiceMonitors, want 1", len(r.serviceMonitors))
				}
				sm := r.serviceMonitors[0]
				if sm.Labels["release"] != "prom" {
					t.Errorf("labels %v lack release=prom", sm.Labels)
				}
				var got []string
				for _, ep := range sm.Spec.Endpoints {
					got = append(got, fmt.Sprintf("%s %s %s %s %s", ep.Port, ep.Path, ep.Interval, ep.ScrapeTimeout, ep.Scheme))
				}
				if want := []string{"metrics /metrics 15s 10s ", "http /metrics 15s 10s "}; !slices.Equal(got, want) {
					t.Errorf("endpoints %q, want %q", got, want)
				}
				if !slices.Equal(sm.Spec.NamespaceSelector.MatchNames, []string{namespace}) {
					t.Errorf("namespaceSelector %v", sm.Spec.NamespaceSelector.MatchNames)
				}
			},
		},
		{
			name: "four shard nodes over 64 shards",
			values: `
shard: {replicas: 4, frontier: {scope: domain, delay: 2s, perHostConcurrency: 2, maxDepth: 5, ignoreRobots: true}}
shardCount: 64
`,
			check: func(t *testing.T, r *release) {
				if rep := r.statefulSets["shard"].Spec.Replicas; rep == nil || *rep != 4 {
					t.Errorf("shard replicas %s, want 4", ptrString(rep))
				}
				wantFlags(t, r, "shard", map[string]string{
					"shards": "auto", "shard-nodes": "4", "shard-count": "64",
					"scope": "domain", "delay": "2s", "per-host-concurrency": "2", "max-depth": "5", "ignore-robots": "true",
				})
			},
		},
		{
			name:   "custom storage class and size",
			values: "shard: {persistence: {storageClassName: fast-ssd, size: 200Gi, annotations: {backup: daily}}}",
			check: func(t *testing.T, r *release) {
				sc := "fast-ssd"
				checkPVC(t, r, "200Gi", &sc)
			},
		},
		{
			name: "worker options, PDB, extra args and env",
			values: `
logLevel: warn
worker:
  logLevel: debug
  userAgent: "linkgraph (+https://example.org/bot)"
  timeout: 20s
  maxBody: 4MiB
  extraArgs: ["--allow-private-networks"]
  extraEnv: [{name: HTTPS_PROXY, value: "http://proxy:3128"}]
  resources: {requests: {cpu: 1}, limits: null}
  pdb: {enabled: true}
shard: {cacheSize: 2GiB, compactOnStart: true}
`,
			check: func(t *testing.T, r *release) {
				if spec, _ := r.container(t, "shard"); len(spec.InitContainers) != 1 {
					t.Errorf("shard.compactOnStart: %d init containers, want compact's", len(spec.InitContainers))
				}
				wantFlags(t, r, "worker", map[string]string{
					"log-level": "debug", "user-agent": "linkgraph (+https://example.org/bot)", "timeout": "20s", "max-body": "4MiB",
					"allow-private-networks": "true",
				})
				wantFlags(t, r, "shard", map[string]string{"log-level": "warn", "cache-size": "2GiB"})
				wantFlags(t, r, "rank", map[string]string{"log-level": "warn"})
				_, c := r.container(t, "worker")
				if len(c.Env) != 1 || c.Env[0].Name != "HTTPS_PROXY" {
					t.Errorf("worker env %v, want HTTPS_PROXY only (no memory limit, so no GOMEMLIMIT)", c.Env)
				}
				if p := r.pdbs["worker"]; p == nil || p.Spec.MaxUnavailable == nil || p.Spec.MaxUnavailable.String() != "50%" {
					t.Errorf("worker PDB %+v, want maxUnavailable 50%%", p)
				}
			},
		},
		{
			name: "a longer drain with longer grace periods",
			values: `
shutdownGraceSeconds: 50
worker: {terminationGracePeriodSeconds: 60}
shard: {terminationGracePeriodSeconds: 90}
gateway: {terminationGracePeriodSeconds: 60}
`,
			check: func(t *testing.T, r *release) {
				for _, comp := range []string{"worker", "gateway"} {
					wantFlags(t, r, comp, map[string]string{"shutdown-grace": "50s"})
				}
				wantFlags(t, r, "shard", map[string]string{"shutdown-grace": ""})
				// rank has no drain: its default grace period (30) need not exceed 50.
				wantFlags(t, r, "rank", map[string]string{"shutdown-grace": ""})
				if tg := r.cronJobs["rank"].Spec.JobTemplate.Spec.Template.Spec.TerminationGracePeriodSeconds; tg == nil || *tg != 30 {
					t.Errorf("rank terminationGracePeriodSeconds %s, want 30", ptrString(tg))
				}
			},
		},
		{
			name:    "a longer drain needs longer grace periods everywhere",
			values:  "shutdownGraceSeconds: 50\nshard: {terminationGracePeriodSeconds: 60}",
			wantErr: "terminationGracePeriodSeconds (30) must exceed shutdownGraceSeconds (50)",
		},
		{
			name:    "grace period equal to the drain",
			values:  "shard: {terminationGracePeriodSeconds: 25}",
			wantErr: "terminationGracePeriodSeconds (25) must exceed shutdownGraceSeconds (25)",
		},
		{
			name:    "more shard nodes than shards",
			values:  "shard: {replicas: 8}\nshardCount: 4",
			wantErr: "shard.replicas (8) must not exceed shardCount (4)",
		},
		{
			name: "rank options",
			values: `
logLevel: warn
rank:
  schedule: "@every 6h"
  timeZone: Europe/Berlin
  startingDeadlineSeconds: 600
  successfulJobsHistoryLimit: 1
  failedJobsHistoryLimit: 5
  backoffLimit: 0
  activeDeadlineSeconds: 7200
  logLevel: debug
  extraArgs: ["--out=-", "--level=domain"]
  extraEnv: [{name: GOGC, value: "50"}]
  resources: {requests: {cpu: 2, memory: 4Gi}, limits: {memory: 8Gi}}
  terminationGracePeriodSeconds: 10
  podAnnotations: {team: search}
  nodeSelector: {pool: highmem}
  priorityClassName: batch-low
`,
			check: func(t *testing.T, r *release) {
				cj := r.cronJobs["rank"]
				s, js := cj.Spec, cj.Spec.JobTemplate.Spec
				got := fmt.Sprintf("%s %s deadline %s history %s/%s backoff %s active %s", s.Schedule, ptrString(s.TimeZone),
					ptrString(s.StartingDeadlineSeconds), ptrString(s.SuccessfulJobsHistoryLimit), ptrString(s.FailedJobsHistoryLimit),
					ptrString(js.BackoffLimit), ptrString(js.ActiveDeadlineSeconds))
				if want := "@every 6h Europe/Berlin deadline 600 history 1/5 backoff 0 active 7200"; got != want {
					t.Errorf("CronJob %s, want %s", got, want)
				}
				wantFlags(t, r, "rank", map[string]string{"log-level": "debug", "out": "-", "level": "domain"})
				spec, c := r.container(t, "rank")
				if names := envNames(c); !slices.Equal(names, []string{"GOMEMLIMIT", "GOGC"}) {
					t.Errorf("rank env %v, want GOMEMLIMIT then GOGC", names)
				}
				wantResources(t, "rank", c, "2", "4Gi", "8Gi")
				pod := js.Template
				if pod.Annotations["team"] != "search" || spec.NodeSelector["pool"] != "highmem" || spec.PriorityClassName != "batch-low" ||
					ptrString(spec.TerminationGracePeriodSeconds) != "10" {
					t.Errorf("rank pod: annotations %v, nodeSelector %v, priorityClassName %q, terminationGracePeriodSeconds %s",
						pod.Annotations, spec.NodeSelector, spec.PriorityClassName, ptrString(spec.TerminationGracePeriodSeconds))
				}
				if !strings.Contains(r.notes, `ranks hosts and domains at "@every 6h" (Europe/Berlin)`) {
					t.Errorf("NOTES.txt lacks the schedule and its time zone:\n%s", r.notes)
				}
			},
		},
		{
			name:   "rank disabled",
			values: "rank: {enabled: false}",
			check: func(t *testing.T, r *release) {
				if len(r.cronJobs) != 0 {
					t.Errorf("%d CronJobs with rank.enabled false", len(r.cronJobs))
				}
				for _, o := range r.objects {
					if o.meta.Labels["app.kubernetes.io/component"] == "rank" {
						t.Errorf("%s rendered with rank.enabled false", o)
					}
				}
				if strings.Contains(r.notes, "rank") {
					t.Errorf("NOTES.txt mentions the ranking CronJob, which is off:\n%s", r.notes)
				}
			},
		},
		{name: "rank schedule not a string", values: "rank: {schedule: 5}", wantErr: "/rank/schedule"},
		{name: "rank schedule not cron", values: "rank: {schedule: daily}", wantErr: "/rank/schedule"},
		{name: "rank schedule with a TZ prefix", values: `rank: {schedule: "TZ=UTC 17 3 * * *"}`, wantErr: "/rank/schedule"},
		{name: "rank concurrency is not a value", values: "rank: {concurrencyPolicy: Allow}", wantErr: "concurrencyPolicy"},
		{name: "typo in a rank value", values: "rank: {backofLimit: 5}", wantErr: "backofLimit"},
		{name: "rank log level", values: "rank: {logLevel: verbose}", wantErr: "/rank/logLevel"},
		{name: "typo in a value", values: "worker: {replica: 3}", wantErr: "replica"},
		{name: "stream replicas over JetStream's limit", values: "streamReplicas: 7", wantErr: "streamReplicas"},
		{name: "unknown log level", values: "logLevel: verbose", wantErr: "logLevel"},
		{name: "unknown scope", values: "shard: {frontier: {scope: web}}", wantErr: "scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := render(t, tt.values)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("render error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			checkInvariants(t, r)
			if tt.check != nil {
				tt.check(t, r)
			}
			lintChart(t, tt.values)
		})
	}
}

// checkRankDefaults checks the ranking CronJob of the default values.
func checkRankDefaults(t *testing.T, r *release) {
	t.Helper()
	cj, ok := r.cronJobs["rank"]
	if !ok {
		t.Fatal("no rank CronJob: rank.enabled is true by default")
	}
	if want := fullname + "-rank"; cj.Name != want {
		t.Errorf("CronJob name %q, want %q", cj.Name, want)
	}
	s, js := cj.Spec, cj.Spec.JobTemplate.Spec
	got := fmt.Sprintf("%q tz %s %s deadline %s history %s/%s backoff %s active %s suspend %s", s.Schedule, ptrString(s.TimeZone),
		s.ConcurrencyPolicy, ptrString(s.StartingDeadlineSeconds), ptrString(s.SuccessfulJobsHistoryLimit), ptrString(s.FailedJobsHistoryLimit),
		ptrString(js.BackoffLimit), ptrString(js.ActiveDeadlineSeconds), ptrString(s.Suspend))
	if want := `"17 3 * * *" tz unset Forbid deadline 3600 history 3/3 backoff 2 active 3600 suspend unset`; got != want {
		t.Errorf("CronJob %s,\nwant    %s", got, want)
	}
	// A usage error (exit code 2) fails the Job at once; an eviction is retried for free.
	var rules []string
	if js.PodFailurePolicy != nil {
		for _, rule := range js.PodFailurePolicy.Rules {
			switch {
			case rule.OnExitCodes != nil:
				rules = append(rules, fmt.Sprintf("%s %s %s %v", rule.Action, ptrString(rule.OnExitCodes.ContainerName), rule.OnExitCodes.Operator, rule.OnExitCodes.Values))
			default:
				for _, pc := range rule.OnPodConditions {
					rules = append(rules, fmt.Sprintf("%s %s", rule.Action, pc.Type))
				}
			}
		}
	}
	if want := []string{"FailJob rank In [2]", "Ignore DisruptionTarget"}; !slices.Equal(rules, want) {
		t.Errorf("podFailurePolicy %q, want %q", rules, want)
	}
	spec, c := r.container(t, "rank")
	if spec.RestartPolicy != corev1.RestartPolicyNever || c.Name != "rank" {
		t.Errorf("rank pod: restartPolicy %q, container %q; want Never, rank", spec.RestartPolicy, c.Name)
	}
	// Exactly the role and the common flags: no --shutdown-grace, no listen address.
	if want := []string{"rank", "--nats=nats://nats:4222", "--log-level=info"}; !slices.Equal(c.Args, want) {
		t.Errorf("rank args %q, want %q", c.Args, want)
	}
	wantResources(t, "rank", c, "1", "512Mi", "2Gi")
	if names := envNames(c); !slices.Equal(names, []string{"GOMEMLIMIT"}) {
		t.Errorf("rank env %v, want GOMEMLIMIT only", names)
	}
	// Without NATS credentials or TLS the pod mounts only its /tmp.
	if len(c.VolumeMounts) != 1 || len(spec.Volumes) != 1 || c.VolumeMounts[0].MountPath != "/tmp" || spec.Volumes[0].EmptyDir == nil {
		t.Errorf("rank mounts %v of volumes %v, want an emptyDir at /tmp only", c.VolumeMounts, spec.Volumes)
	}
}

// wantResources checks a container's CPU request and memory request and limit.
func wantResources(t *testing.T, comp string, c *corev1.Container, cpu, memory, memoryLimit string) {
	t.Helper()
	req, lim := c.Resources.Requests, c.Resources.Limits
	got := fmt.Sprintf("requests cpu %s memory %s, limits memory %s", req.Cpu(), req.Memory(), lim.Memory())
	if want := fmt.Sprintf("requests cpu %s memory %s, limits memory %s", cpu, memory, memoryLimit); got != want {
		t.Errorf("%s: %s, want %s", comp, got, want)
	}
	if _, ok := lim[corev1.ResourceCPU]; ok {
		t.Errorf("%s: a CPU limit throttles it; the chart sets none", comp)
	}
}

// envNames lists a container's environment variables; GOMEMLIMIT must come from the memory
// limit.
func envNames(c *corev1.Container) []string {
	var names []string
	for _, e := range c.Env {
		if e.Name == "GOMEMLIMIT" && (e.ValueFrom == nil || e.ValueFrom.ResourceFieldRef == nil || e.ValueFrom.ResourceFieldRef.Resource != "limits.memory") {
			names = append(names, "GOMEMLIMIT(not from limits.memory)")
			continue
		}
		names = append(names, e.Name)
	}
	return names
}

func checkPVC(t *testing.T, r *release, size string, storageClass *string) {
	t.Helper()
	s := r.statefulSets["shard"]
	if len(s.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("shard: %d volumeClaimTemplates, want 1", len(s.Spec.VolumeClaimTemplates))
	}
	pvc := s.Spec.VolumeClaimTemplates[0]
	got := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	if pvc.Name != "data" || got.String() != size || !slices.Equal(pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
		t.Errorf("PVC template %s size %s modes %v, want data %s ReadWriteOnce", pvc.Name, got.String(), pvc.Spec.AccessModes, size)
	}
	if ptrString(pvc.Spec.StorageClassName) != ptrString(storageClass) {
		t.Errorf("PVC storageClassName %s, want %s", ptrString(pvc.Spec.StorageClassName), ptrString(storageClass))
	}
	_, c := r.container(t, "shard")
	if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "data" && m.MountPath == "/data" && !m.ReadOnly }) {
		t.Errorf("shard mounts %v, want data at /data", c.VolumeMounts)
	}
}

func wantSecretVolume(t *testing.T, comp string, spec *corev1.PodSpec, volume, secret string, items map[string]string) {
	t.Helper()
	for _, v := range spec.Volumes {
		if v.Name != volume {
			continue
		}
		if v.Secret == nil || v.Secret.SecretName != secret {
			t.Errorf("%s: volume %s is %+v, want Secret %s", comp, volume, v.VolumeSource, secret)
			return
		}
		got := map[string]string{}
		for _, it := range v.Secret.Items {
			got[it.Key] = it.Path
		}
		if !maps.Equal(got, items) {
			t.Errorf("%s: Secret %s items %v, want %v", comp, secret, got, items)
		}
		return
	}
	t.Errorf("%s: no volume %s", comp, volume)
}

// lintChart runs `helm lint`'s rules with the values. Errors fail; the one expected warning
// is the NATS dependency missing from charts/ (it is fetched by `helm dependency update`,
// not vendored).
func lintChart(t *testing.T, valuesYAML string) {
	t.Helper()
	vals, err := chartutil.ReadValues([]byte(valuesYAML))
	if err != nil {
		t.Fatal(err)
	}
	l := lint.All(chartDir, vals, namespace, false)
	for _, m := range l.Messages {
		switch {
		case m.Severity >= support.ErrorSev:
			t.Errorf("helm lint: %s", m)
		case m.Severity == support.WarningSev && !strings.Contains(m.Err.Error(), "missing these dependencies: nats"):
			t.Errorf("helm lint: %s", m)
		}
	}
}

// TestLongNamesFit renders the chart with the longest prefix it allows (fullnameOverride is
// cut to 45 characters): the CronJob's name must still be one the API server accepts.
func TestLongNamesFit(t *testing.T) {
	r, err := render(t, "fullnameOverride: "+strings.Repeat("x", 63))
	if err != nil {
		t.Fatal(err)
	}
	cj, ok := r.cronJobs["rank"]
	if !ok {
		t.Fatal("no rank CronJob")
	}
	if want := strings.Repeat("x", 45) + "-rank"; cj.Name != want {
		t.Errorf("CronJob name %q, want %q", cj.Name, want)
	}
	checkCronJob(t, "rank", cj)
}

// TestValuesDocumented checks that every leaf of values.yaml has a comment above it or above
// its enclosing key, and that values.schema.json knows every key values.yaml has.
func TestValuesDocumented(t *testing.T) {
	ch := loadChart(t)
	var raw []byte
	for _, f := range ch.Raw {
		if f.Name == "values.yaml" {
			raw = f.Data
		}
	}
	lines := strings.Split(string(raw), "\n")
	// A key line is documented when the nearest non-blank line above it is a comment, or
	// when it is part of a block (a list item, or a child of a documented key whose value
	// is a Kubernetes object the chart copies whole).
	documented := func(i int) bool {
		for j := i - 1; j >= 0; j-- {
			s := strings.TrimSpace(lines[j])
			if s == "" {
				return false
			}
			return strings.HasPrefix(s, "#")
		}
		return false
	}
	indent := func(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }
	var undocumented []string
	// passthrough holds the indentation of a documented key whose children are free-form.
	passthrough := -1
	for i, line := range lines {
		s := strings.TrimSpace(line)
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		if passthrough >= 0 && indent(line) > passthrough {
			continue
		}
		passthrough = -1
		if strings.HasPrefix(s, "- ") {
			continue
		}
		key, rest, ok := strings.Cut(s, ":")
		if !ok {
			continue
		}
		rest = strings.TrimSpace(rest)
		isParent := rest == "" || strings.HasPrefix(rest, "#")
		if documented(i) {
			if isParent {
				passthrough = indent(line)
			}
			continue
		}
		if !isParent {
			undocumented = append(undocumented, fmt.Sprintf("line %d: %s", i+1, key))
		}
	}
	if len(undocumented) > 0 {
		t.Errorf("values.yaml has values without a comment:\n%s", strings.Join(undocumented, "\n"))
	}
	if ch.Schema == nil {
		t.Fatal("no values.schema.json")
	}
}

// TestChartMetadata checks Chart.yaml: the NATS dependency as declared for `helm dependency
// update`, and a kubeVersion that admits gRPC probes' clusters only.
func TestChartMetadata(t *testing.T) {
	ch := loadChart(t)
	md := ch.Metadata
	if md.APIVersion != chart.APIVersionV2 || md.Name != "linkgraph" || md.Type != "application" {
		t.Errorf("Chart.yaml: apiVersion %q name %q type %q", md.APIVersion, md.Name, md.Type)
	}
	if len(md.Dependencies) != 1 {
		t.Fatalf("%d dependencies, want the NATS chart", len(md.Dependencies))
	}
	d := md.Dependencies[0]
	if d.Name != "nats" || d.Repository != "https://nats-io.github.io/k8s/helm/charts/" || d.Condition != "nats.enabled" || !strings.HasPrefix(d.Version, "1.") {
		t.Errorf("dependency %+v", d)
	}
	for v, want := range map[string]bool{"v1.26.9": false, "v1.27.0": true, "v1.33.2": true, "v1.37.0": true} {
		if got := chartutil.IsCompatibleRange(md.KubeVersion, v); got != want {
			t.Errorf("kubeVersion %q admits %s: %v, want %v", md.KubeVersion, v, got, want)
		}
	}
	if md.AppVersion == "" {
		t.Error("no appVersion: image.tag has no default")
	}
}
