using SharedLvm.Os.Reservations;

namespace SharedLvm.Tests.Support;

/// <summary>
/// The persistent reservation state of the cluster's LUs, as a target keeps it (one registration per
/// I_T nexus, one holder, type 5), shared by every in-process agent: each agent gets a
/// <see cref="Node"/> view with its own path count. Where the host has no SCSI, this is the only
/// model of SPC-4 the main suite has; the SAN lab runs tgt for real.
/// </summary>
internal sealed class FakeSan
{
    private readonly object _gate = new();
    private readonly Dictionary<string, List<ReservationKey>> _keys = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ReservationKey> _holders = new(StringComparer.Ordinal);

    /// <summary>False: every command fails as a target without PR answers (ILLEGAL REQUEST).</summary>
    public bool Supported { get; set; } = true;

    public int Preempts { get; private set; }

    /// <summary>How long each preempt takes, as a slow array's would: a fence then holds its gate that long.</summary>
    public TimeSpan PreemptDelay { get; set; }

    public IReadOnlyList<ReservationKey> Keys(string device)
    {
        lock (_gate)
        {
            return _keys.TryGetValue(device, out var keys) ? keys.ToArray() : [];
        }
    }

    public ReservationKey? Holder(string device)
    {
        lock (_gate)
        {
            return _holders.TryGetValue(device, out var holder) ? holder : null;
        }
    }

    /// <summary>Removes a key as a preempt by someone else would (a crashed fence that got this far).</summary>
    public void Remove(string device, ReservationKey key)
    {
        lock (_gate)
        {
            _keys.GetValueOrDefault(device)?.RemoveAll(k => k == key);
        }
    }

    public IPersistentReservations Node(int paths = 2) => new View(this, paths);

    private sealed class View(FakeSan san, int paths) : IPersistentReservations
    {
        public Task<RegisteredKeys> ReadKeysAsync(string device, CancellationToken cancellationToken) =>
            Do(() => new RegisteredKeys(0, san.Keys(device)));

        public Task<ReservationState> ReadReservationAsync(string device, CancellationToken cancellationToken) =>
            Do(() => san.Holder(device) is { } h ? new ReservationState(0, h, PrType.WriteExclusiveRegistrantsOnly) : new ReservationState(0, null, PrType.None));

        public Task RegisterAsync(string device, ReservationKey key, CancellationToken cancellationToken) => Do(() =>
        {
            var keys = Registrations(device);
            keys.RemoveAll(k => k == key);
            keys.AddRange(Enumerable.Repeat(key, paths));
            return true;
        });

        public Task ReserveAsync(string device, ReservationKey key, CancellationToken cancellationToken) => Do(() =>
        {
            if (!Registrations(device).Contains(key) || (san._holders.TryGetValue(device, out var h) && h != key))
            {
                throw new PersistentReservationException("mpathpersist --out --reserve", 11, "reservation conflict", PrErrorKind.ReservationConflict);
            }

            san._holders[device] = key;
            return true;
        });

        public async Task<PreemptMode> PreemptAsync(string device, ReservationKey own, ReservationKey victim, CancellationToken cancellationToken)
        {
            await Task.Delay(san.PreemptDelay, cancellationToken);
            return await Do(() => Preempt(device, own, victim));
        }

        private PreemptMode Preempt(string device, ReservationKey own, ReservationKey victim)
        {
            var keys = Registrations(device);
            if (!keys.Contains(own) || !keys.Contains(victim))
            {
                throw new PersistentReservationException("mpathpersist --out --preempt", 11, "reservation conflict", PrErrorKind.ReservationConflict);
            }

            keys.RemoveAll(k => k == victim);
            if (san._holders.TryGetValue(device, out var holder) && holder == victim)
            {
                san._holders[device] = own;
            }

            san.Preempts++;
            return PreemptMode.Preempt;
        }

        private List<ReservationKey> Registrations(string device) =>
            san._keys.TryGetValue(device, out var keys) ? keys : san._keys[device] = [];

        private Task<T> Do<T>(Func<T> action)
        {
            lock (san._gate)
            {
                return san.Supported
                    ? Task.FromResult(action())
                    : throw new PersistentReservationException("mpathpersist", 5, "PR in: command failed: Illegal Request", PrErrorKind.NotSupported);
            }
        }
    }
}
