using System.Text;
using Google.Protobuf;

namespace SharedLvm.Cli;

/// <summary>Tables for people, JSON (the proto3 JSON mapping) for scripts.</summary>
internal sealed class Output(TextWriter writer, bool json)
{
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
