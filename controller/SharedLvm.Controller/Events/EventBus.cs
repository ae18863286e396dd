using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Google.Protobuf.WellKnownTypes;
using SharedLvm.Contracts.V1;
using SharedLvm.Controller.Catalog;

namespace SharedLvm.Controller.Events;

/// <summary>
/// Controller events with monotonic sequence numbers. The last <see cref="Retained"/> are kept so a
/// watcher can resume after a disconnect without gaps; a watcher too slow to keep up is ended with
/// an error (it resumes from its last sequence) rather than silently losing events.
/// </summary>
public sealed class EventBus
{
    public const int Retained = 4096;
    private readonly object _gate = new();
    private readonly LinkedList<Event> _recent = new();
    private readonly List<Channel<Event>> _watchers = [];
    private ulong _sequence;
    private long _alarms;

    public long AlarmCount => Interlocked.Read(ref _alarms);

    public void Publish(EventKind kind, string subject, string message, Action<Event>? fill = null)
    {
        lock (_gate)
        {
            var e = new Event { Sequence = ++_sequence, Time = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow), Kind = kind, Subject = subject, Message = message };
            fill?.Invoke(e);
            _recent.AddLast(e);
            if (_recent.Count > Retained)
            {
                _recent.RemoveFirst();
            }

            foreach (var watcher in _watchers.ToArray())
            {
                if (!watcher.Writer.TryWrite(e))
                {
                    watcher.Writer.TryComplete(new InvalidOperationException(
                        $"Event watcher fell more than {Retained} events behind; resume with after_sequence."));
                    _watchers.Remove(watcher);
                }
            }
        }
    }

    /// <summary>A volume was created or changed: the event carries its new state, as a get would show it once the change is done.</summary>
    public void VolumeChanged(PoolCatalog catalog, VolumeRecord volume, string message) =>
        Publish(EventKind.VolumeChanged, volume.Id, message,
            e => e.Volume = volume.ToContract(VolumeStates.Of(volume, inFlight: null, catalog.Attachments(volume)), catalog.Attachments(volume), catalog.Work(volume.Id)));

    /// <summary>
    /// An attachment moved on (attaching, attached, detached): the subject is the volume, and the
    /// event carries the volume's new state with its attachments.
    /// </summary>
    public void AttachmentChanged(PoolCatalog catalog, VolumeRecord volume, string message) =>
        Publish(EventKind.AttachmentChanged, volume.Id, message, e => e.Volume = volume.ToContract(catalog));

    public void NodeChanged(NodeRecord node, IEnumerable<string> attachedVolumeIds, string message) =>
        Publish(EventKind.NodeChanged, node.Name, message, e => e.Node = node.ToContract(attachedVolumeIds));

    public void Alarm(string subject, string message)
    {
        Interlocked.Increment(ref _alarms);
        Publish(EventKind.Alarm, subject, message);
    }

    public async IAsyncEnumerable<Event> WatchAsync(ulong afterSequence, IReadOnlySet<EventKind> kinds, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var channel = Channel.CreateBounded<Event>(Retained);
        List<Event> backlog;
        lock (_gate)
        {
            backlog = afterSequence == 0 ? [] : _recent.Where(e => e.Sequence > afterSequence).ToList();
            _watchers.Add(channel);
        }

        try
        {
            foreach (var e in backlog)
            {
                if (kinds.Count == 0 || kinds.Contains(e.Kind))
                {
                    yield return e;
                }
            }

            await foreach (var e in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                if (kinds.Count == 0 || kinds.Contains(e.Kind))
                {
                    yield return e;
                }
            }
        }
        finally
        {
            lock (_gate)
            {
                _watchers.Remove(channel);
            }
        }
    }
}
