namespace SharedLvm.Agent;

/// <summary>Settings, from /etc/sharedlvm/agent.json, SHAREDLVM_AGENT__* variables and the command line.</summary>
public sealed class AgentOptions
{
    /// <summary>host:port of the agent gRPC API (mutual TLS unless Insecure; only the controller's certificate is obeyed).</summary>
    public string Listen { get; set; } = "127.0.0.1:7401";

    /// <summary>Plaintext, nobody authenticated: development only, and logged loudly.</summary>
    public bool Insecure { get; set; }

    /// <summary>The cluster CA (scripts/pki ca).</summary>
    public string TlsCa { get; set; } = "/etc/sharedlvm/pki/ca.crt";

    /// <summary>This node's certificate (scripts/pki node NAME): its CN must be NodeName.</summary>
    public string TlsCertificate { get; set; } = "/etc/sharedlvm/pki/node.crt";

    /// <summary>Its key; start-up refuses a key others can read.</summary>
    public string TlsKey { get; set; } = "/etc/sharedlvm/pki/node.key";

    /// <summary>host:port of the Prometheus /metrics listener (HTTP/1.1); empty turns it off. Loopback by default.</summary>
    public string MetricsListen { get; set; } = "127.0.0.1:7411";

    /// <summary>OTLP/HTTP endpoint for traces; none by default.</summary>
    public string? OtlpEndpoint { get; set; }

    /// <summary>This node's name as the controller knows it; defaults to the hostname.</summary>
    public string NodeName { get; set; } = Environment.MachineName.ToLowerInvariant();

    /// <summary>The controller's API: host:port (https, or http with Insecure) or a URL; several, comma-separated.</summary>
    public string Controller { get; set; } = "127.0.0.1:7400";

    /// <summary><see cref="Controller"/>'s addresses: one controller, or an active one and its standbys.</summary>
    public string[] ControllerAddresses => Controller.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Deadline of each registration and heartbeat call to a controller.</summary>
    public TimeSpan ControllerCallTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>host:port the controller reaches this agent at, when it differs from Listen (NAT, 0.0.0.0).</summary>
    public string? AdvertiseAddress { get; set; }

    /// <summary>Where the agent keeps the highest controller epoch it has seen.</summary>
    public string StateDirectory { get; set; } = "/var/lib/sharedlvm-agent";

    /// <summary>Commands the controller sent, and refused callers: one JSON line each.</summary>
    public string AuditLogPath => Path.Combine(StateDirectory, "audit.log");

    public string LvmBinary { get; set; } = "lvm";

    /// <summary>Every lvm command is killed after this: a hung path must never hang the agent.</summary>
    public TimeSpan LvmTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Devices lvm may scan besides multipath maps (tests: a loop device). Normally empty.</summary>
    public List<string> ExtraLvmDevicePatterns { get; set; } = [];

    /// <summary>
    /// How long a refresh (a live health call, an activation's visibility check) waits for the LVM
    /// view before answering with the last one and an lvm_unresponsive finding. Below the
    /// controller's 15 s for a live health call.
    /// </summary>
    public TimeSpan LvmInspectWait { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long one lvm inspection may run before the LVM layer is reported unresponsive. Well above
    /// a slow answer: in the lab (TCG) a report took over 5 s while six SCSI hosts were rescanned,
    /// and a finding that flaps on a busy node trains operators to ignore it.
    /// </summary>
    public TimeSpan LvmUnresponsiveAfter { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Read the LVM view and host hygiene on every resync (off in fixture-only tests).</summary>
    public bool InspectLvm { get; set; } = true;

    /// <summary>Root of the sysfs/udev tree ("/"; a fixture directory in tests).</summary>
    public string SysfsRoot { get; set; } = "/";

    /// <summary>WWIDs of the shared LUs this node must see (health reports any that are missing).</summary>
    public List<string> ExpectedWwids { get; set; } = [];

    /// <summary>Full resync of the SAN view even without events (netlink can drop events in storms).</summary>
    public TimeSpan ResyncInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How often the reconciler looks at the current view for an LV active through a raw path (an
    /// in-memory check; lvm runs only when there is one to deactivate).
    /// </summary>
    public TimeSpan RawPathCheckInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How often the node's reservation key is checked on every pool LU (registered on every path,
    /// or preempted). Each mpathpersist call takes 0.5-0.9 s in the lab's TCG guests (lab.md).
    /// </summary>
    public TimeSpan ReservationCheckInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Every mpathpersist call is killed after this (a LU with every path down must not hang the keeper).</summary>
    public TimeSpan ReservationCommandTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Timeout of every multipathd query: a wedged multipathd must not wedge the agent.</summary>
    public TimeSpan MultipathdTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The D-Bus bus systemd is on: "system" (the system bus), or an address (tests: a private bus).</summary>
    public string DBusAddress { get; set; } = "system";

    /// <summary>Timeout of every dmsetup query (tables and open counts for the inventory).</summary>
    public TimeSpan DmSetupTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Copies and wipes this node runs at once; more are refused (RESOURCE_EXHAUSTED) so the controller picks another node.</summary>
    public int MaxConcurrentDataJobs { get; set; } = 2;

    /// <summary>
    /// Default I/O rate cap of one copy or wipe, bytes per second (the controller may ask for less):
    /// a clone must not starve the VMs on the node of their share of the LU's paths.
    /// </summary>
    public ulong DataJobMaxBytesPerSecond { get; set; } = 256UL * 1024 * 1024;
}
