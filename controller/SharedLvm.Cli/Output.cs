using System.Text;
using Google.Protobuf;

namespace SharedLvm.Cli;

/// <summary>Tables for people, JSON (the proto3 JSON mapping) for scripts.</summary>
/// <param name="interactive">stdout is a terminal: progress redraws one line instead of printing many.</param>
internal sealed class Output(TextWriter writer, bool json, bool interactive = false)
{
    private const int BarWidth = 30;
    private string? _lastProgress;
    private DateTime _lastProgressAt;

    private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithFormatDefaultValues(true));

    public bool Json => json;

    public void Message(IMessage message, Func<IEnumerable<(string, string)>> fields)
    {
        if (json)
        {
            writer.WriteLine(Formatter.Format(message));
            return;
        }

        var rows = fields().ToList();
        var width = rows.Max(r => r.Item1.Length);
        foreach (var (key, value) in rows)
        {
            writer.WriteLine(key.PadRight(width) + "  " + value);
        }
    }

    public void Table<T>(IMessage container, IReadOnlyList<T> items, string[] headers, Func<T, string[]> row)
    {
        if (json)
        {
            writer.WriteLine(Formatter.Format(container));
            return;
        }

        var rows = items.Select(row).ToList();
        var widths = headers.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        writer.WriteLine(Line(headers, widths));
        foreach (var r in rows)
        {
            writer.WriteLine(Line(r, widths));
        }
    }

    public void Text(string text)
    {
        if (!json)
        {
            writer.WriteLine(text);
        }
    }

    /// <summary>
    /// A long operation's progress: a redrawn bar on a terminal; otherwise a plain line when it moved
    /// (at most one every 10 s), so that logs of a script stay readable. Nothing in JSON mode.
    /// </summary>
    public void Progress(string what, ulong done, ulong total, ulong bytesPerSecond, uint etaSeconds)
    {
        if (json)
        {
            return;
        }

        var fraction = total == 0 ? 1 : Math.Min(1, (double)done / total);
        var figures = $"{100 * fraction,5:0.0}% {Sizes.Format(done)} of {Sizes.Format(total)}, {Sizes.Format(bytesPerSecond)}/s, ETA {etaSeconds} s";
        if (interactive)
        {
            var filled = (int)(fraction * BarWidth);
            writer.Write($"\r{what} [{new string('#', filled)}{new string('.', BarWidth - filled)}] {figures}   ");
            _lastProgress = figures;
            return;
        }

        if (_lastProgress is null || DateTime.UtcNow - _lastProgressAt >= TimeSpan.FromSeconds(10))
        {
            writer.WriteLine($"{what}: {figures}");
            _lastProgress = figures;
            _lastProgressAt = DateTime.UtcNow;
        }
    }

    /// <summary>A status line while a long operation waits (no progress yet): printed once per change.</summary>
    public void Status(string what, string status)
    {
        if (json || status == _lastProgress)
        {
            return;
        }

        writer.Write(interactive ? $"\r{what}: {status}   " : $"{what}: {status}{Environment.NewLine}");
        _lastProgress = status;
    }

    /// <summary>Ends a progress line on a terminal.</summary>
    public void EndProgress()
    {
        if (interactive && !json && _lastProgress is not null)
        {
            writer.WriteLine();
        }

        _lastProgress = null;
    }

    private static string Line(string[] cells, int[] widths)
    {
        var line = new StringBuilder();
        for (var i = 0; i < cells.Length; i++)
        {
            line.Append(i == cells.Length - 1 ? cells[i] : cells[i].PadRight(widths[i] + 2));
        }

        return line.ToString().TrimEnd();
    }
}
