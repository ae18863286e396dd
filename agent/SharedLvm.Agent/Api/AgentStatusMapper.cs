using Grpc.Core;
using SharedLvm.Hosting;
using SharedLvm.Os.Lvm;
using SharedLvm.Os.Processes;

namespace SharedLvm.Agent.Api;

/// <summary>The agent's wire boundary: its refusals and OS failures as gRPC statuses, here and nowhere else.</summary>
public sealed class AgentStatusMapper : IStatusMapper
{
    public Status? Map(Exception exception) => exception switch
    {
        AgentException e => new Status(e.Kind switch
        {
            AgentErrorKind.InvalidArgument => StatusCode.InvalidArgument,
            AgentErrorKind.NotFound => StatusCode.NotFound,
            AgentErrorKind.Unavailable => StatusCode.Unavailable,
            AgentErrorKind.ResourceExhausted => StatusCode.ResourceExhausted,
            _ => StatusCode.FailedPrecondition,
        }, e.Message),
        // I/O on the LU failed (a path down without queueing, a reservation conflict): the LU, not the request.
        SharedLvm.Os.Devices.BlockDeviceException => new Status(StatusCode.Unavailable, exception.Message),
        // A reservation conflict is this node being fenced: not something a retry here fixes.
        SharedLvm.Os.Reservations.PersistentReservationException { Kind: SharedLvm.Os.Reservations.PrErrorKind.ReservationConflict } =>
            new Status(StatusCode.FailedPrecondition, exception.Message),
        SharedLvm.Os.Reservations.PersistentReservationException => new Status(StatusCode.Unavailable, exception.Message),
        LvmException or ProcessTimeoutException or ProcessStartException => new Status(StatusCode.Unavailable, exception.Message),
        _ => null,
    };

    /// <summary>The status an exception ends a call with (for metrics of operations that still run).</summary>
    public static StatusCode CodeOf(Exception exception) => new AgentStatusMapper().Map(exception)?.StatusCode ?? StatusCode.Internal;
}
