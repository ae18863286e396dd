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

    /// <summary>Refuse new volumes when the metadata area has less than this free (LVM fails hard at 0).</summary>
    public ulong MetadataReserveBytes { get; set; } = 64 * 1024;

    /// <summary>Warn when the metadata area's free fraction drops below this (VDSM: 20 %).</summary>
    public double MetadataWarnFreeFraction { get; set; } = 0.20;

    /// <summary>Who did what: every mutating call and every refused call, one JSON line each.</summary>
    public string AuditLogPath => Path.Combine(StateDirectory, "audit.log");

    public string DatabasePath => Path.Combine(StateDirectory, "controller.db");

    public string BackupDirectory => Path.Combine(StateDirectory, "lvm", "backup");

    public string ArchiveDirectory => Path.Combine(StateDirectory, "lvm", "archive");
}
