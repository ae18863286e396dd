using Grpc.Core;
using Microsoft.Extensions.Logging;
using SharedLvm.Controller.Catalog;

namespace SharedLvm.Controller;

/// <summary>Every log message of the controller, one place: stable event ids 3xxx, each used once (a test checks).</summary>
internal static partial class ControllerLog
{
    [LoggerMessage(3001, LogLevel.Information, "Pool {Pool}: loaded VG {Vg} with {Volumes} volumes at seqno {Seqno}")]
    public static partial void Loaded(ILogger logger, string pool, string vg, int volumes, ulong seqno);

    [LoggerMessage(3003, LogLevel.Error, "Pool {Pool}: VG {Vg} seqno changed from {Expected} to {Actual} by another writer; reloading")]
    public static partial void ForeignWrite(ILogger logger, string pool, string vg, ulong expected, ulong actual);

    [LoggerMessage(3101, LogLevel.Information, "Pool {Pool} added on {Device} ({Mode})")]
    public static partial void PoolAdded(ILogger logger, string pool, string device, string mode);

    [LoggerMessage(3102, LogLevel.Error, "Pool {Pool} on {Device} could not be loaded; it is unavailable until the next start")]
    public static partial void PoolUnavailable(ILogger logger, string pool, string device, Exception exception);

    [LoggerMessage(3103, LogLevel.Warning, "Pool {Pool}: wipe_on_delete is now {Policy}")]
    public static partial void PoolPolicyChanged(ILogger logger, string pool, string policy);

    [LoggerMessage(3201, LogLevel.Information, "Pool {Pool}: {Operation} of volume {VolumeId} ({Name}) committed")]
    public static partial void Written(ILogger logger, string pool, string operation, string volumeId, string name);

    [LoggerMessage(3202, LogLevel.Warning, "Pool {Pool}: {Operation} of volume {VolumeId} ({Name}) failed: {Error}")]
    public static partial void LvmFailed(ILogger logger, string pool, string operation, string volumeId, string name, string error);

    [LoggerMessage(3203, LogLevel.Error, "Pool {Pool}: lvm {Operation} of volume {VolumeId} timed out after {TimeoutSeconds} s; reconciling from the VG")]
    public static partial void LvmTimedOut(ILogger logger, string pool, string operation, string volumeId, double timeoutSeconds);

    [LoggerMessage(3204, LogLevel.Warning, "Pool {Pool}: {Operation} of volume {VolumeId} ({Name}) had committed before the crash without an acknowledgement")]
    public static partial void CommittedNotAcknowledged(ILogger logger, string pool, string operation, string volumeId, string name);

    [LoggerMessage(3205, LogLevel.Warning, "Pool {Pool}: journal entry {Kind} of volume {VolumeId} ({Name}) left pending by a crash: {Outcome}")]
    public static partial void Recovered(ILogger logger, string pool, string kind, string volumeId, string name, string outcome);

    [LoggerMessage(3206, LogLevel.Warning, "Pool {Pool}: foreign-writer check failed")]
    public static partial void CheckFailed(ILogger logger, string pool, Exception exception);

    [LoggerMessage(3301, LogLevel.Information, "Controller {ControllerId} serving with epoch {Epoch} and {Pools} pools")]
    public static partial void Started(ILogger logger, string controllerId, ulong epoch, int pools);

    [LoggerMessage(3310, LogLevel.Warning, "Snapshots are unavailable on this controller: {Reason}; CreateSnapshot and RestoreSnapshot answer FAILED_PRECONDITION")]
    public static partial void SnapshotsUnavailable(ILogger logger, string reason);

    [LoggerMessage(3401, LogLevel.Information, "Node {Node} registered from {Address} ({State})")]
    public static partial void Registered(ILogger logger, string node, string address, NodeLiveness state);

    [LoggerMessage(3402, LogLevel.Warning, "Node {Node}: {From} -> {To}. {Reason}")]
    public static partial void StateChanged(ILogger logger, string node, NodeLiveness from, NodeLiveness to, string reason);

    [LoggerMessage(3403, LogLevel.Critical, "DOUBLE ACTIVATION: LV {Lv} is active on {Node} and on {Others}")]
    public static partial void DoubleActivation(ILogger logger, string lv, string node, string others);

    [LoggerMessage(3501, LogLevel.Information, "Volume {VolumeId} ({Name}) attached to node {Node} as {Device} (rescanned: {Rescanned}) in {TotalMs} ms: owner tag {TagMs} ms, agent {AgentMs} ms")]
    public static partial void Attached(ILogger logger, string volumeId, string name, string node, string device, bool rescanned, long totalMs, long tagMs, long agentMs);

    [LoggerMessage(3502, LogLevel.Information, "Volume {VolumeId} ({Name}) detached from node {Node} in {TotalMs} ms: agent {AgentMs} ms, owner tag {TagMs} ms")]
    public static partial void Detached(ILogger logger, string volumeId, string name, string node, long totalMs, long agentMs, long tagMs);

    [LoggerMessage(3503, LogLevel.Warning, "Node {Node} could not {Action} volume {VolumeId}: {StatusCode} {Detail}")]
    public static partial void AgentFailed(ILogger logger, string action, string volumeId, string node, StatusCode statusCode, string detail);

    [LoggerMessage(3504, LogLevel.Warning, "Detaching volume {VolumeId} from FENCED node {Node} without its agent")]
    public static partial void DetachFenced(ILogger logger, string volumeId, string node);

    [LoggerMessage(3505, LogLevel.Information, "Volume {VolumeId} ({Name}) is attached to node {Node} on its owner tag's word, with no device on record (a takeover): the node reports it active, its device is {Device}")]
    public static partial void AttachmentSettled(ILogger logger, string volumeId, string name, string node, string device);

    [LoggerMessage(3506, LogLevel.Error, "Settling attachments (in-flight ones left by an earlier controller, devices from the nodes' reports) failed; trying again in {Seconds} s")]
    public static partial void SettleFailed(ILogger logger, double seconds, Exception exception);

    [LoggerMessage(3507, LogLevel.Warning, "The {Phase} of volume {VolumeId} on node {Node} was left in flight by an earlier controller (a crash or a takeover); {Outcome}")]
    public static partial void OrphanSettled(ILogger logger, string phase, string volumeId, string node, string outcome);

    [LoggerMessage(3601, LogLevel.Error, "agent of node {Node} at {Address} refused over TLS: {Reason}")]
    public static partial void AgentRefused(ILogger logger, string node, string address, string reason);

    [LoggerMessage(3901, LogLevel.Information, "Volume {VolumeId} ({Name}): {Operation} started on node {Node} from byte {ResumeFrom} of {TotalBytes}")]
    public static partial void DataJobStarted(ILogger logger, string volumeId, string name, string operation, string node, ulong resumeFrom, ulong totalBytes);

    [LoggerMessage(3902, LogLevel.Information, "Volume {VolumeId} ({Name}): {Operation} finished on node {Node}, {TotalBytes} bytes in {Seconds:0.0} s")]
    public static partial void DataJobFinished(ILogger logger, string volumeId, string name, string operation, string node, ulong totalBytes, double seconds);

    [LoggerMessage(3903, LogLevel.Warning, "Volume {VolumeId} ({Name}): {Operation} on node {Node} failed at byte {DoneBytes}: {Error}; retrying in {RetrySeconds} s")]
    public static partial void DataJobFailed(ILogger logger, string volumeId, string name, string operation, string node, ulong doneBytes, string error, double retrySeconds);

    [LoggerMessage(3904, LogLevel.Warning, "Volume {VolumeId} ({Name}): {Operation} waits: {Reason}")]
    public static partial void DataJobWaiting(ILogger logger, string volumeId, string name, string operation, string reason);

    [LoggerMessage(3905, LogLevel.Information, "Volume {VolumeId} ({Name}): copy cancelled ({Reason})")]
    public static partial void DataJobCancelled(ILogger logger, string volumeId, string name, string reason);

    [LoggerMessage(3951, LogLevel.Information, "Writer lease: standby (host id {HostId}); pool {Pool}'s lease is held by host {OwnerId}, the active controller is {Active}")]
    public static partial void Standby(ILogger logger, ulong hostId, string pool, ulong ownerId, string active);

    [LoggerMessage(3952, LogLevel.Information, "Writer lease: active (host id {HostId}) on {Pools} pools, epoch {Epoch} (lease version {Lver})")]
    public static partial void LeaseAcquired(ILogger logger, ulong hostId, int pools, ulong epoch, ulong lver);

    [LoggerMessage(3953, LogLevel.Critical, "Writer lease of pool {Pool} LOST: the disk says host {OwnerId} holds it at version {Lver} (ours: host {HostId} version {OurLver}); no more writes, stopping")]
    public static partial void LeaseLost(ILogger logger, string pool, ulong ownerId, ulong lver, ulong hostId, ulong ourLver);

    [LoggerMessage(3954, LogLevel.Warning, "Pool {Pool} has no lease area yet: creating {Lv} ({Reason})")]
    public static partial void LeaseAreaCreated(ILogger logger, string pool, string lv, string reason);

    [LoggerMessage(3955, LogLevel.Error, "Node {Node} has seen controller epoch {Seen}, above ours ({Epoch}): another controller took over, or this state directory is older than the cluster; agents refuse this controller")]
    public static partial void HigherEpochSeen(ILogger logger, string node, ulong seen, ulong epoch);

    [LoggerMessage(3956, LogLevel.Information, "Pool {Pool} found on {Device} by its lease area; added to this controller's state")]
    public static partial void PoolDiscovered(ILogger logger, string pool, string device);

    [LoggerMessage(3957, LogLevel.Warning, "Writer lease: {Action} failed, retrying: {Error}")]
    public static partial void LeaseRetry(ILogger logger, string action, string error);

    [LoggerMessage(3959, LogLevel.Information, "Writer lease: took the cluster's marks from the LU: {Nodes} nodes, {Marked} fenced or draining (written at epoch {Epoch}, sequence {Sequence})")]
    public static partial void MarksImported(ILogger logger, int nodes, int marked, ulong epoch, ulong sequence);

    [LoggerMessage(3960, LogLevel.Warning, "Writer lease: the cluster's marks could not be written beside pool {Pool}'s lease: {Error}")]
    public static partial void MarksNotWritten(ILogger logger, string pool, string error);

    [LoggerMessage(3961, LogLevel.Information, "Writer lease: pool {Pool}'s lease area (lockspace {Lockspace}) is new or holds no writer resource of its own yet; formatting it")]
    public static partial void LeaseAreaFormatted(ILogger logger, string pool, string lockspace);

    [LoggerMessage(3962, LogLevel.Warning, "Writer lease: no pool yet on {Devices}; only host id 1's controller creates the first pool, so this one (host id {HostId}) waits as a standby until a formatted lease area appears there")]
    public static partial void WaitingForFirstPool(ILogger logger, string devices, ulong hostId);

    [LoggerMessage(3958, LogLevel.Critical, "Controller start-up failed; stopping")]
    public static partial void StartupFailed(ILogger logger, Exception exception);

    [LoggerMessage(3700, LogLevel.Information, "Pool {Pool}: {Count} writes committed in one {Command} in {Milliseconds:0} ms")]
    public static partial void BatchCommitted(ILogger logger, string pool, string command, int count, double milliseconds);

    [LoggerMessage(3701, LogLevel.Warning, "Pool {Pool}: a batch of {Count} writes could not be committed at once ({Reason}); each runs alone")]
    public static partial void BatchFailed(ILogger logger, string pool, int count, string reason);

    [LoggerMessage(3702, LogLevel.Error, "Pool {Pool}: lvm {Command} of a batch of {Count} writes timed out after {TimeoutSeconds} s; reconciling each from the VG")]
    public static partial void BatchTimedOut(ILogger logger, string pool, string command, int count, double timeoutSeconds);

    [LoggerMessage(3703, LogLevel.Information, "Pool {Pool}: a batched lvremove of {Count} LVs found some already gone (a finished delete)")]
    public static partial void BatchMissing(ILogger logger, string pool, int count);

    [LoggerMessage(3704, LogLevel.Error, "Pool {Pool}: the spliced metadata of a batch of {Count} writes broke an invariant and was not restored ({Violation}); each runs alone")]
    public static partial void BatchRefused(ILogger logger, string pool, int count, string violation);

    [LoggerMessage(3705, LogLevel.Warning, "Pool {Pool}: the seqno could not be read from {Device}'s metadata area ({Reason}); asking lvm instead")]
    public static partial void SeqnoUnreadable(ILogger logger, string pool, string device, string reason);
    [LoggerMessage(3800, LogLevel.Warning, "Node {Node} FENCED ({Method}, {Trigger}): {Reason}")]
    public static partial void Fenced(ILogger logger, string node, SharedLvm.Controller.Catalog.FenceMethod method, SharedLvm.Controller.Fencing.FenceTrigger trigger, string reason);

    [LoggerMessage(3801, LogLevel.Warning, "Fencing node {Node} ({Trigger}) failed, it is not fenced: {Detail}")]
    public static partial void FenceFailed(ILogger logger, string node, SharedLvm.Controller.Fencing.FenceTrigger trigger, string detail);

    [LoggerMessage(3802, LogLevel.Warning, "Node {Node} is fenced by DECLARATION only, not at the storage: {Why}")]
    public static partial void DeclaredFence(ILogger logger, string node, string why);

    [LoggerMessage(3803, LogLevel.Information, "Preempted node {Node}'s key {Key} on LU {Wwid} from node {Fencer} ({Mode}); read back absent")]
    public static partial void Preempted(ILogger logger, string node, string key, string wwid, string fencer, string mode);

    [LoggerMessage(3804, LogLevel.Warning, "Node {Fencer} could not preempt node {Node} on LU {Wwid}: {StatusCode} {Detail}")]
    public static partial void FencerFailed(ILogger logger, string fencer, string node, string wwid, StatusCode statusCode, string detail);

    [LoggerMessage(3806, LogLevel.Information, "Pool {Pool}: this controller host's reservation key {Key} is registered on every path of {Device}")]
    public static partial void ControllerRegistered(ILogger logger, string pool, string device, string key);

    [LoggerMessage(3807, LogLevel.Warning, "Pool {Pool}: registering this controller host's reservation key {Key} on {Device} failed: {Error}")]
    public static partial void ControllerRegistrationFailed(ILogger logger, string pool, string device, string key, string error);

    [LoggerMessage(3805, LogLevel.Warning, "Fencing node {Node}: not preempted on LU {Wwid}, where it holds no volume ({Why}); the LUs of its volumes decide")]
    public static partial void FenceSkippedLu(ILogger logger, string node, string wwid, string why);
}
