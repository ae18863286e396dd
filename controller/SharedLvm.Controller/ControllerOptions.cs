namespace SharedLvm.Controller;

/// <summary>Settings, from /etc/sharedlvm/controller.json, SHAREDLVM_CONTROLLER__* variables and the command line.</summary>
public sealed class ControllerOptions
{
    /// <summary>host:port of the gRPC API (HTTP/2, mutual TLS unless Insecure).</summary>
    public string Listen { get; set; } = "127.0.0.1:7400";

    /// <summary>Plaintext, nobody authenticated, everything allowed: local development only, and logged loudly.</summary>
    public bool Insecure { get; set; }

    /// <summary>The cluster CA every peer's certificate must chain to (scripts/pki ca).</summary>
    public string TlsCa { get; set; } = "/etc/sharedlvm/pki/ca.crt";

    /// <summary>The controller's certificate (scripts/pki controller): role "controller", which agents obey.</summary>
    public string TlsCertificate { get; set; } = "/etc/sharedlvm/pki/controller.crt";

    /// <summary>Its key; start-up refuses a key others can read.</summary>
    public string TlsKey { get; set; } = "/etc/sharedlvm/pki/controller.key";

    /// <summary>API bearer tokens, "NAME ROLE sha256:HEX" per line (scripts/pki token); reread when it changes.</summary>
    public string TokensFile { get; set; } = "/etc/sharedlvm/pki/tokens";

    /// <summary>Mutating calls per caller: sustained rate and burst (RESOURCE_EXHAUSTED beyond).</summary>
    public SharedLvm.Hosting.Security.MutationLimits Mutations { get; set; } = new();

    /// <summary>Concurrent calls (HTTP/2 streams) one connection may hold open.</summary>
    public int MaxConcurrentStreams { get; set; } = 100;

    /// <summary>host:port of the Prometheus /metrics listener (HTTP/1.1); empty turns it off. Loopback by default.</summary>
    public string MetricsListen { get; set; } = "127.0.0.1:7410";

    /// <summary>OTLP/HTTP endpoint for traces (e.g. http://collector:4318/v1/traces); none by default.</summary>
    public string? OtlpEndpoint { get; set; }

    /// <summary>Holds controller.db (epoch, pools, operation journal) and lvm backup/archive.</summary>
    public string StateDirectory { get; set; } = "/var/lib/sharedlvm";

    public string LvmBinary { get; set; } = "lvm";

    /// <summary>Every lvm command is killed after this; its outcome is then reconciled from the VG.</summary>
    public TimeSpan LvmTimeout { get; set; } = TimeSpan.FromSeconds(120);

    /// <summary>--lvm-timeout: <see cref="LvmTimeout"/> in seconds.</summary>
    public double LvmTimeoutSeconds
    {
        get => LvmTimeout.TotalSeconds;
        set => LvmTimeout = TimeSpan.FromSeconds(value);
    }

    /// <summary>Writes queued per pool before new ones get RESOURCE_EXHAUSTED.</summary>
    public int WriteQueueCapacity { get; set; } = 256;

    /// <summary>How often the VG seqno is compared with the controller's own writes (foreign-writer alarm).</summary>
    public TimeSpan ForeignWriteCheckInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long an agent gets to activate, deactivate or refresh before the controller gives up (UNAVAILABLE).</summary>
    public TimeSpan AgentTimeout { get; set; } = TimeSpan.FromSeconds(120);

    /// <summary>Agents heartbeat this often; three missed make a node UNREACHABLE.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Most queued writes combined into one metadata commit. One vgcfgrestore costs about the same for
    /// 1 and 128 changes (field.md 4: 831 vs 906 ms at 8k LVs); the limit bounds one commit's text and
    /// how many callers one failed batch sends back to the single-command path.
    /// </summary>
    public int WriteBatchLimit { get; set; } = 64;

    /// <summary>
    /// After a commit that carried several writes, how long the writer waits at most for as many
    /// writes as it carried (the callers it just answered are about to send their next ones), on top
    /// of those that queued while it ran, before committing what it has. Never after a single write, so a write with nothing else queued does
    /// not wait. A commit costs 50-850 ms (0-8k LVs); this is small against it.
    /// </summary>
    public TimeSpan WriteBatchLinger { get; set; } = TimeSpan.FromMilliseconds(20);

    /// <summary>
    /// Automatic fencing: a node UNREACHABLE longer than this while holding volumes is fenced at the
    /// storage (its reservation key preempted), and its volumes released. Null (the default): off.
    /// </summary>
    public TimeSpan? AutoFenceAfter { get; set; }

    /// <summary>--auto-fence-after: <see cref="AutoFenceAfter"/> in seconds; 0 = off.</summary>
    public double AutoFenceAfterSeconds
    {
        get => AutoFenceAfter?.TotalSeconds ?? 0;
        set => AutoFenceAfter = value > 0 ? TimeSpan.FromSeconds(value) : null;
    }

    /// <summary>How often pending fences are retried and the automatic policy is applied.</summary>
    public TimeSpan FenceCheckInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Metadata archives kept per VG.</summary>
    public int ArchiveRetainCount { get; set; } = 20;

    /// <summary>Copies and wipes the controller runs on one node at once (the agent refuses more anyway).</summary>
    public int DataJobsPerNode { get; set; } = 2;

    /// <summary>I/O rate cap the controller asks of each copy or wipe, bytes per second; 0 = the agent's own cap.</summary>
    public ulong DataJobMaxBytesPerSecond { get; set; }

    /// <summary>
    /// Take and restore COW snapshots when this host has device-mapper (the only thing the controller
    /// ever activates: a new snapshot's COW store, and an origin while a snapshot merges into it).
    /// False refuses snapshots whatever the host has.
    /// </summary>
    public bool Snapshots { get; set; } = true;

    /// <summary>Refuse new volumes when the metadata area has less than this free (LVM fails hard at 0).</summary>
    public ulong MetadataReserveBytes { get; set; } = 64 * 1024;

    /// <summary>Warn when the metadata area's free fraction drops below this (VDSM: 20 %).</summary>
    public double MetadataWarnFreeFraction { get; set; } = 0.20;

    /// <summary>
    /// "none": this controller is the writer because it is the only one (its epoch lives in the state
    /// directory). "sanlock": every pool's LU carries a sanlock writer lease; any number of controllers
    /// run, the holder is active, the rest are standbys (needs the sanlock daemon and HostId).
    /// </summary>
    public string Lease { get; set; } = "none";

    /// <summary>sanlock host id of this controller host, 1..250, unique among the controllers.</summary>
    public ulong HostId { get; set; }

    /// <summary>
    /// sanlock io_timeout of the pools' lockspaces. A dead holder's lease frees 8 x this + the watchdog's
    /// 60 s after its last renewal: 140 s at sanlock's default 10, 76 s at 2 (ARCHITECTURE.md).
    /// </summary>
    public uint LeaseIoTimeoutSeconds { get; set; } = 10;

    /// <summary>host:port clients should use for this controller (standbys point to it); default: Listen.</summary>
    public string? Advertise { get; set; }

    public string AdvertisedAddress => string.IsNullOrEmpty(Advertise) ? Listen : Advertise;

    /// <summary>
    /// Comma-separated devices (by WWID: /dev/mapper/WWID) to look for pools on at start: a pool with a
    /// lease area that this state directory does not know is added, so a controller on a fresh host
    /// joins with every pool.
    /// </summary>
    public string PoolDevices { get; set; } = string.Empty;

    public bool UsesSanlock => string.Equals(Lease, "sanlock", StringComparison.Ordinal);

    /// <summary>Who did what: every mutating call and every refused call, one JSON line each.</summary>
    public string AuditLogPath => Path.Combine(StateDirectory, "audit.log");

    public string DatabasePath => Path.Combine(StateDirectory, "controller.db");

    public string BackupDirectory => Path.Combine(StateDirectory, "lvm", "backup");

    public string ArchiveDirectory => Path.Combine(StateDirectory, "lvm", "archive");

    /// <summary>Every metadata text the writer restored in a batch (lvm archives none for a vgcfgrestore), bounded by <see cref="ArchiveRetainCount"/>.</summary>
    public string BatchArchiveDirectory => Path.Combine(StateDirectory, "lvm", "batches");
}
