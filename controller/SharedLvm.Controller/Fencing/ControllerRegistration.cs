using Microsoft.Extensions.Logging;
using SharedLvm.Contracts.Conventions;
using SharedLvm.Controller.Events;
using SharedLvm.Os.Processes;
using SharedLvm.Os.Reservations;

namespace SharedLvm.Controller.Fencing;

/// <summary>
/// The controller host's own reservation key on every pool LU it writes through a multipath map.
/// The nodes hold "write exclusive, registrants only" (type 5) on their LUs: an unregistered
/// initiator's writes fail with a reservation conflict, the controller's metadata writes included.
/// So the controller registers (REGISTER AND IGNORE, every path, mpathpersist) before it writes a
/// pool's metadata: when it loads its pools and when a pool is created or adopted. Its key is never
/// a node's (<see cref="ReservationKey.ForControllerHost"/>), so no fence preempts it. A pool on any
/// other device needs nothing: the SAN lab's and the tests' loop devices are no SCSI initiators and
/// their writes ignore reservations (lab.md).
/// </summary>
public sealed class ControllerRegistration
{
    /// <summary>A LU whose paths are all down must not hold up the pools on the others for long.</summary>
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(20);

    private readonly IPersistentReservations _pr;
    private readonly EventBus _events;
    private readonly ILogger<ControllerRegistration> _logger;

    public ControllerRegistration(IProcessRunner runner, ControllerOptions options, EventBus events, ILogger<ControllerRegistration> logger)
    {
        _pr = new PersistentReservations(runner, CommandTimeout);
        _events = events;
        _logger = logger;
        Key = ReservationKey.ForControllerHost(options.HostId);
    }

    public ReservationKey Key { get; }

    /// <summary>Registers on a pool's map; a failure is said loudly but does not stop the pool (its writes will tell).</summary>
    public async Task EnsureAsync(string pool, string devicePath, CancellationToken cancellationToken)
    {
        if (MultipathDevice.WwidOf(devicePath).Length == 0)
        {
            return;
        }

        try
        {
            await _pr.RegisterAsync(devicePath, Key, cancellationToken).ConfigureAwait(false);
            ControllerLog.ControllerRegistered(_logger, pool, devicePath, Key.ToString());
        }
        catch (PersistentReservationException e) when (e.Kind == PrErrorKind.NotSupported)
        {
            // No PR on this LU: nobody can reserve it, so nothing refuses our writes.
        }
        catch (Exception e) when (e is PersistentReservationException or ProcessTimeoutException or ProcessStartException)
        {
            ControllerLog.ControllerRegistrationFailed(_logger, pool, devicePath, Key.ToString(), e.Message);
            _events.Alarm(pool, $"The controller host could not register its reservation key {Key} on {devicePath}: {e.Message}. " +
                "Once a node holds the LU's reservation, this controller's metadata writes fail with reservation conflicts.");
        }
    }
}
