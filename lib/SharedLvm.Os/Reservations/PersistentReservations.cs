using SharedLvm.Os.Processes;

namespace SharedLvm.Os.Reservations;

/// <summary>How a preempt was carried out.</summary>
public enum PreemptMode
{
    /// <summary>PREEMPT AND ABORT: the victim's registrations go and its queued commands are aborted.</summary>
    PreemptAndAbort,
    /// <summary>
    /// Plain PREEMPT, because the target refused PREEMPT AND ABORT (tgt 1.0.85 answers ILLEGAL
    /// REQUEST, lab.md): new writes of the victim fail, commands already queued at the target are
    /// not aborted.
    /// </summary>
    Preempt,
}

/// <summary>The SCSI-3 persistent reservation verbs SharedLvm uses, on a multipath map.</summary>
public interface IPersistentReservations
{
    Task<RegisteredKeys> ReadKeysAsync(string device, CancellationToken cancellationToken);

    Task<ReservationState> ReadReservationAsync(string device, CancellationToken cancellationToken);

    /// <summary>REGISTER AND IGNORE EXISTING KEY on every path: idempotent, whatever was registered before.</summary>
    Task RegisterAsync(string device, ReservationKey key, CancellationToken cancellationToken);

    /// <summary>RESERVE, type Write Exclusive - Registrants Only, with a registered key.</summary>
    Task ReserveAsync(string device, ReservationKey key, CancellationToken cancellationToken);

    /// <summary>Removes the victim's registrations (and takes over the reservation if the victim held it).</summary>
    Task<PreemptMode> PreemptAsync(string device, ReservationKey own, ReservationKey victim, CancellationToken cancellationToken);
}

/// <summary>
/// Persistent reservations through mpathpersist, never sg_persist: a reservation key must be
/// registered on every I_T nexus of the node (every path). sg_persist on one sdX registers one path
/// only, and I/O that multipath sends down the other path then fails with a reservation conflict
/// (lab.md, tgt + QEMU iSCSI). mpathpersist registers on all paths of the map, and with
/// `reservation_key file` in multipath.conf multipathd registers the key on paths that appear later.
///
/// The reservation type is Write Exclusive - Registrants Only (5), not All Registrants (7): with
/// either, only registered nodes write and a preempted node's writes fail on every path; with 5
/// there is one holder, and a PREEMPT naming the holder's key moves the reservation to the
/// preempting node in the same command (SPC-4 5.14.11.2.4), so the LU is never without a
/// reservation while a node is being fenced. Type 5 is also what lab.md verified with tgt 1.0.85
/// and mpathpersist; type 7 was not tried there.
/// </summary>
public sealed class PersistentReservations : IPersistentReservations
{
    public const int ReservationType = (int)PrType.WriteExclusiveRegistrantsOnly;

    private readonly IProcessRunner _runner;
    private readonly TimeSpan _timeout;

    public PersistentReservations(IProcessRunner runner, TimeSpan timeout)
    {
        _runner = runner;
        _timeout = timeout;
    }

    public async Task<RegisteredKeys> ReadKeysAsync(string device, CancellationToken cancellationToken) =>
        PrOutput.ParseKeys(await RunAsync(["--in", "--read-keys", device], cancellationToken).ConfigureAwait(false));

    public async Task<ReservationState> ReadReservationAsync(string device, CancellationToken cancellationToken) =>
        PrOutput.ParseReservation(await RunAsync(["--in", "--read-reservation", device], cancellationToken).ConfigureAwait(false));

    public Task RegisterAsync(string device, ReservationKey key, CancellationToken cancellationToken) =>
        RunAsync(["--out", "--register-ignore", "--param-sark=" + key, device], cancellationToken);

    public Task ReserveAsync(string device, ReservationKey key, CancellationToken cancellationToken) =>
        RunAsync(["--out", "--reserve", "--param-rk=" + key, "--prout-type=" + ReservationType, device], cancellationToken);

    public async Task<PreemptMode> PreemptAsync(string device, ReservationKey own, ReservationKey victim, CancellationToken cancellationToken)
    {
        try
        {
            await RunAsync(["--out", "--preempt-abort", "--param-rk=" + own, "--param-sark=" + victim, "--prout-type=" + ReservationType, device], cancellationToken).ConfigureAwait(false);
            return PreemptMode.PreemptAndAbort;
        }
        catch (PersistentReservationException e) when (e.Kind == PrErrorKind.NotSupported)
        {
            await RunAsync(["--out", "--preempt", "--param-rk=" + own, "--param-sark=" + victim, "--prout-type=" + ReservationType, device], cancellationToken).ConfigureAwait(false);
            return PreemptMode.Preempt;
        }
    }

    private async Task<string> RunAsync(IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        var spec = new ProcessSpec("mpathpersist", arguments) { Timeout = _timeout };
        var result = await _runner.RunAsync(spec, cancellationToken).ConfigureAwait(false);
        if (!result.Succeeded)
        {
            throw new PersistentReservationException(spec.ToString(), result.ExitCode, result.StandardError + result.StandardOutput,
                PersistentReservationException.ClassifyMpathpersist(result.ExitCode, result.StandardError + result.StandardOutput));
        }

        return result.StandardOutput;
    }
}
