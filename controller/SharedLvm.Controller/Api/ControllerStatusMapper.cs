using Grpc.Core;
using SharedLvm.Hosting;
using SharedLvm.Os.Lvm;
using SharedLvm.Os.Processes;

namespace SharedLvm.Controller.Api;

/// <summary>The controller's wire boundary: its domain and OS exceptions as gRPC statuses, here and nowhere else.</summary>
public sealed class ControllerStatusMapper : IStatusMapper
{
    public Status? Map(Exception exception) => exception switch
    {
        ControllerException c => new Status(Code(c.Kind), c.Message),
        LvmException l => new Status(Code(l.Kind), Describe(l)),
        ProcessTimeoutException t => new Status(StatusCode.Unavailable, $"{t.Message} Retry; the outcome is reconciled from the VG."),
        ProcessStartException s => new Status(StatusCode.Unavailable, s.Message),
        _ => null,
    };

    /// <summary>The status an exception ends a call with (for metrics of operations that still run).</summary>
    public static StatusCode CodeOf(Exception exception) => new ControllerStatusMapper().Map(exception)?.StatusCode ?? StatusCode.Internal;

    private static StatusCode Code(ControllerErrorKind kind) => kind switch
    {
        ControllerErrorKind.InvalidArgument => StatusCode.InvalidArgument,
        ControllerErrorKind.NotFound => StatusCode.NotFound,
        ControllerErrorKind.AlreadyExists => StatusCode.AlreadyExists,
        ControllerErrorKind.FailedPrecondition => StatusCode.FailedPrecondition,
        ControllerErrorKind.Aborted => StatusCode.Aborted,
        ControllerErrorKind.ResourceExhausted => StatusCode.ResourceExhausted,
        ControllerErrorKind.Unavailable => StatusCode.Unavailable,
        _ => StatusCode.Internal,
    };

    private static StatusCode Code(LvmErrorKind kind) => kind switch
    {
        LvmErrorKind.NotFound => StatusCode.NotFound,
        LvmErrorKind.AlreadyExists => StatusCode.AlreadyExists,
        LvmErrorKind.InsufficientSpace or LvmErrorKind.MetadataFull => StatusCode.ResourceExhausted,
        LvmErrorKind.NeedsDeviceMapper => StatusCode.FailedPrecondition,
        LvmErrorKind.InvalidArgument => StatusCode.InvalidArgument,
        _ => StatusCode.Internal,
    };

    private static string Describe(LvmException e) => e.Kind switch
    {
        LvmErrorKind.NeedsDeviceMapper => $"lvm {e.Command} needs the device-mapper kernel driver on the controller host: {LvmException.Summarize(e.StandardError)}",
        _ => $"lvm {e.Command} failed (exit {e.ExitCode}): {LvmException.Summarize(e.StandardError)}",
    };
}
