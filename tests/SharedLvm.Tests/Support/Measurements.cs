using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace SharedLvm.Tests.Support;

/// <summary>
/// Every measurement of one meter's instruments from the moment it is created, with its labels.
/// Tests run in parallel in one process and their hosts share meter names, so a test picks its own
/// series by a label only it uses (its pool's name), not by instrument alone.
/// </summary>
internal sealed class Measurements : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentQueue<(string Name, IReadOnlyDictionary<string, string> Labels, double Value)> _seen = new();

    public Measurements(string meterName, string namePrefix)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == meterName && instrument.Name.StartsWith(namePrefix, StringComparison.Ordinal))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<int>((i, value, tags, _) => Add(i, value, tags));
        _listener.SetMeasurementEventCallback<long>((i, value, tags, _) => Add(i, value, tags));
        _listener.SetMeasurementEventCallback<double>((i, value, tags, _) => Add(i, value, tags));
        _listener.Start();
    }

    /// <summary>The values recorded on <paramref name="name"/> with all of these labels (and maybe others), in order.</summary>
    public IReadOnlyList<double> Of(string name, params (string Key, string Value)[] labels) =>
        _seen.Where(m => m.Name == name && labels.All(l => m.Labels.TryGetValue(l.Key, out var v) && v == l.Value))
            .Select(m => m.Value)
            .ToArray();

    /// <summary>The label sets seen on <paramref name="name"/> with a non-zero value.</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, string>> LabelsOf(string name) =>
        _seen.Where(m => m.Name == name && m.Value != 0).Select(m => m.Labels).ToArray();

    public void Dispose() => _listener.Dispose();

    private void Add(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var tag in tags)
        {
            labels[tag.Key] = Convert.ToString(tag.Value, System.Globalization.CultureInfo.InvariantCulture) ?? string.Empty;
        }

        _seen.Enqueue((instrument.Name, labels, value));
    }
}
