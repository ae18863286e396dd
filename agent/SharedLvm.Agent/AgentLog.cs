using Grpc.Core;
using Microsoft.Extensions.Logging;
using SharedLvm.Contracts.V1;

namespace SharedLvm.Agent;

/// <summary>Every log message of the agent, one place: stable event ids 4xxx, each used once (a test checks).</summary>
internal static partial class AgentLog
{
    [LoggerMessage(4001, LogLevel.Warning, "{Layer} {Severity}: {Subject}: {Message}")]
    public static partial void Finding(ILogger logger, Layer layer, HealthState severity, string subject, string message);

    [LoggerMessage(4002, LogLevel.Error, "SAN discovery failed; keeping the previous view")]
    public static partial void ScanFailed(ILogger logger, Exception exception);

    [LoggerMessage(4003, LogLevel.Warning, "No uevent socket ({Reason}); relying on a resync every {Seconds} s")]
    public static partial void NoUevents(ILogger logger, string reason, double seconds);

    [LoggerMessage(4101, LogLevel.Information, "Rescan of host{Host} with '{Scan}' took {ElapsedMs} ms: {Result}")]
    public static partial void HostScanned(ILogger logger, int host, string scan, double elapsedMs, string result);

    [LoggerMessage(4102, LogLevel.Error, "Scan write to {Path} hung for more than {TimeoutSeconds} s; abandoned")]
    public static partial void WriteHung(ILogger logger, string path, double timeoutSeconds);

    [LoggerMessage(4201, LogLevel.Information, "Node {Node} registered with controller {Controller} at epoch {Epoch}; it owns {Owned} volumes")]
    public static partial void Registered(ILogger logger, string node, string controller, ulong epoch, int owned);

    [LoggerMessage(4202, LogLevel.Information, "Connected to controller {Controller}")]
    public static partial void ControllerLinkConnected(ILogger logger, string controller);

    [LoggerMessage(4203, LogLevel.Warning, "Controller {Controller} unreachable ({StatusCode}: {Detail}); retrying in about {Seconds} s")]
    public static partial void Unreachable(ILogger logger, string controller, StatusCode statusCode, string detail, double seconds);

    [LoggerMessage(4204, LogLevel.Error, "Refusing controller epoch {Epoch} ({ControllerId}): this agent has seen epoch {Highest}")]
    public static partial void StaleController(ILogger logger, ulong epoch, string controllerId, ulong highest);

    [LoggerMessage(4205, LogLevel.Error, "Controller link failed; retrying")]
    public static partial void LinkFailed(ILogger logger, Exception exception);

    [LoggerMessage(4206, LogLevel.Error, "Controller {Controller} refused over TLS: {Reason}")]
    public static partial void ControllerRefused(ILogger logger, string controller, string reason);

    [LoggerMessage(4301, LogLevel.Warning, "Reconcile: deactivated {Vg}/{Lv}, active here but not owned by this node")]
    public static partial void Deactivated(ILogger logger, string vg, string lv);

    [LoggerMessage(4302, LogLevel.Critical, "Reconcile: {Vg}/{Lv} is active and OPEN here ({Openers}) but not owned by this node")]
    public static partial void NotOwnedButOpen(ILogger logger, string vg, string lv, string openers);

    [LoggerMessage(4303, LogLevel.Error, "Reconcile: could not deactivate {Vg}/{Lv}: {Error}")]
    public static partial void DeactivateFailed(ILogger logger, string vg, string lv, string error);

    [LoggerMessage(4304, LogLevel.Warning, "Reconcile: deactivated {Vg}/{Lv}: it was active through raw path {Devices} instead of multipath map {Map}")]
    public static partial void DeactivatedRawPath(ILogger logger, string vg, string lv, string devices, string map);

    [LoggerMessage(4305, LogLevel.Critical, "Reconcile: {Vg}/{Lv} is active through raw path {Devices} instead of multipath map {Map}, and OPEN ({Openers}): left active")]
    public static partial void RawPathOpen(ILogger logger, string vg, string lv, string devices, string map, string openers);

    [LoggerMessage(4401, LogLevel.Information, "Activated {Vg}/{Lv} (volume {VolumeId}) on node {Node} as {Device}: {Mode}; SAN check {SanMs} ms, lvm and device {LvmMs} ms")]
    public static partial void Activated(ILogger logger, string vg, string lv, string volumeId, string node, string device, string mode, long sanMs, long lvmMs);

    [LoggerMessage(4410, LogLevel.Information, "Following the controller at {Controller}")]
    public static partial void FollowingController(ILogger logger, string controller);

    [LoggerMessage(4402, LogLevel.Information, "Deactivated {Vg}/{Lv} (volume {VolumeId}) on node {Node} (was active: {WasActive})")]
    public static partial void DeactivatedOnOrder(ILogger logger, string vg, string lv, string volumeId, string node, bool wasActive);

    [LoggerMessage(4403, LogLevel.Information, "Data {Operation} of volume {VolumeId} ({Vg}/{Lv}) started on node {Node}: {TotalBytes} bytes from {ResumeFrom}, {Method}")]
    public static partial void DataJobStarted(ILogger logger, string operation, string volumeId, string vg, string lv, string node, ulong totalBytes, ulong resumeFrom, string method);

    [LoggerMessage(4404, LogLevel.Information, "Data {Operation} of volume {VolumeId} ({Vg}/{Lv}) finished on node {Node}: {DoneBytes} bytes ({ZeroedBytes} zeroed) at {BytesPerSecond:0} B/s")]
    public static partial void DataJobFinished(ILogger logger, string operation, string volumeId, string vg, string lv, string node, ulong doneBytes, ulong zeroedBytes, double bytesPerSecond);

    [LoggerMessage(4501, LogLevel.Information, "On the system bus ({Address}): watching multipath device units and multipathd.service")]
    public static partial void SystemdBusConnected(ILogger logger, string address);

    [LoggerMessage(4502, LogLevel.Warning, "No system bus at {Address} ({Reason}): multipathd's unit state is not reported and map device units are not watched; the sysfs/netlink inventory works as before")]
    public static partial void NoBus(ILogger logger, string address, string reason);

    [LoggerMessage(4503, LogLevel.Information, "D-Bus: the device unit of map {Wwid} {Change}; taking a new view of the SAN")]
    public static partial void MapUnit(ILogger logger, string wwid, string change);

    [LoggerMessage(4504, LogLevel.Warning, "Restarting multipathd.service on node {Node}, as an operator asked")]
    public static partial void Restarting(ILogger logger, string node);

    [LoggerMessage(4505, LogLevel.Warning, "D-Bus: reading {Unit} failed: {Reason}")]
    public static partial void ReadFailed(ILogger logger, string unit, string reason);

    [LoggerMessage(4700, LogLevel.Information, "Registered reservation key {Key} on {Wwid} (was on {Registered} of {Paths} paths)")]
    public static partial void RegisteredKey(ILogger logger, string wwid, string key, int registered, int paths);

    [LoggerMessage(4701, LogLevel.Information, "Reserved {Wwid} (write exclusive, registrants only) with key {Key}")]
    public static partial void Reserved(ILogger logger, string wwid, string key);

    [LoggerMessage(4702, LogLevel.Critical, "FENCED AT THE STORAGE: reservation key {Key} was preempted on {Wwid}; writes fail with reservation conflicts, deactivating volumes")]
    public static partial void FencedAtStorage(ILogger logger, string wwid, string key);

    [LoggerMessage(4703, LogLevel.Warning, "Deactivated {Vg}/{Lv}: this node is fenced at the storage")]
    public static partial void DeactivatedFenced(ILogger logger, string vg, string lv);

    [LoggerMessage(4704, LogLevel.Warning, "The controller lets this node register again (resumed): lifting the storage fence latch on {Wwids}")]
    public static partial void FenceLifted(ILogger logger, string wwids);

    [LoggerMessage(4705, LogLevel.Warning, "Preempted key {Victim} on {Wwid} with key {Own} on the controller's order ({Mode})")]
    public static partial void PreemptedKey(ILogger logger, string wwid, string victim, string own, string mode);
}
