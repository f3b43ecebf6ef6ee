// Package podnet is the shared vocabulary of pod networking: what the sandbox
// asks of the network and what the network hands back. It holds types only,
// so that sandbox/ (the consumer) and cni/ (the provider) agree without
// importing each other.
package podnet

import "encoding/json"

// Request attaches one pod to the pod network.
type Request struct {
	SandboxID string
	// NetNS is the pinned network namespace path; "" when it is gone (a DEL
	// after a reboot).
	NetNS        string
	PodName      string
	PodNamespace string
	PodUID       string
	PortMappings []PortMapping
	Bandwidth    *Bandwidth
	DNS          *DNS
	// Result is the stored result of the ADD, handed back to DEL.
	Result json.RawMessage
}

// PortMapping is a hostPort of the pod (the CNI portMappings capability).
type PortMapping struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// Bandwidth is the CNI bandwidth capability, in bits per second.
type Bandwidth struct {
	IngressRate  uint64 `json:"ingressRate,omitempty"`
	IngressBurst uint64 `json:"ingressBurst,omitempty"`
	EgressRate   uint64 `json:"egressRate,omitempty"`
	EgressBurst  uint64 `json:"egressBurst,omitempty"`
}

// DNS is the CNI dns capability.
type DNS struct {
	Servers  []string `json:"servers,omitempty"`
	Searches []string `json:"searches,omitempty"`
	Options  []string `json:"options,omitempty"`
}

// Result is what an ADD produced.
type Result struct {
	// Network is the name of the CNI network attached.
	Network string
	// IPs of the pod, the primary first (IPv4 before IPv6).
	IPs []string
	// Raw is the plugin chain's result, stored for DEL.
	Raw json.RawMessage
}
