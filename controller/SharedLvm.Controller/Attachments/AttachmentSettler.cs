using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SharedLvm.Controller.Lease;

namespace SharedLvm.Controller.Attachments;

/// <summary>
/// Once a heartbeat interval, while this controller holds the lease, settles the attachments an
/// earlier controller left behind: first the attaches and detaches it left in flight
/// (<see cref="AttachmentService.SettleOrphansAsync"/>), then the devices of the attachments the nodes'
/// own reports prove (<see cref="AttachmentService.SettleReportedAsync"/>). After a crash or a
/// takeover, each converges within a heartbeat or two of its node re-registering, with no client retry.
/// </summary>
public sealed class AttachmentSettler(AttachmentService attachments, IWriterLease lease, ControllerOptions options, TimeProvider time, ILogger<AttachmentSettler> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.HeartbeatInterval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            try
            {
                if (lease.IsActive)
                {
                    await attachments.SettleOrphansAsync(stoppingToken).ConfigureAwait(false);
                    await attachments.SettleReportedAsync(stoppingToken).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                // Nothing failing here may stop the controller (an lvm error from an untag, a hung
                // lease read, the state directory): the next tick tries again.
                ControllerLog.SettleFailed(logger, options.HeartbeatInterval.TotalSeconds, e);
            }
        }
    }
}
