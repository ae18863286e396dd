using Grpc.Core;
using SharedLvm.Contracts.V1;
using SharedLvm.Controller.Agents;
using SharedLvm.Controller.Catalog;
using SharedLvm.Os.Reservations;

namespace SharedLvm.Controller.Fencing;

/// <summary>What a fencer node answered: whether the LU implements PR, and every registration after the preempt.</summary>
public sealed record PreemptOutcome(bool Supported, IReadOnlyList<ReservationKey> KeysAfter, string Mode);

/// <summary>The seam between the fencing state machine and whoever sends PERSISTENT RESERVE OUT.</summary>
public interface IStoragePreempter
{
    Task<PreemptOutcome> PreemptAsync(NodeRecord fencer, string wwid, ReservationKey fencerKey, ReservationKey victim, CancellationToken cancellationToken);
}

/// <summary>
/// The preempt is sent by a READY node's agent that sees the LU, on the controller's order and with
/// its epoch (CommandGuard refuses a deposed controller). It is not LVM metadata, so the single-writer
/// rule (invariant 1) is untouched. The controller host does not send it: in the lab its path to the LU
/// is a loop device, which is no I_T nexus and ignores reservations (lab.md).
/// </summary>
public sealed class AgentPreempter(AgentClients agents, ControllerEpoch epoch, ControllerOptions options) : IStoragePreempter
{
    public async Task<PreemptOutcome> PreemptAsync(NodeRecord fencer, string wwid, ReservationKey fencerKey, ReservationKey victim, CancellationToken cancellationToken)
    {
        var response = await agents.For(fencer.Name, fencer.Address).PreemptReservationAsync(
            new PreemptReservationRequest { Header = epoch.HeaderFor(fencer.Name), Wwid = wwid, OwnKey = fencerKey.Value, VictimKey = victim.Value },
            new CallOptions(deadline: DateTime.UtcNow.Add(options.AgentTimeout), cancellationToken: cancellationToken)).ConfigureAwait(false);
        return new PreemptOutcome(response.Supported, response.KeysAfter.Select(k => new ReservationKey(k)).ToArray(), response.Mode);
    }
}
