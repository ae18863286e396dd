using System.Globalization;
using System.Text;

namespace SharedLvm.Os.Lvm;

/// <summary>
/// lvm's metadata text (what `vgcfgbackup -f` writes and `vgcfgrestore -f` reads), parsed just
/// enough to splice changes into it: sections (`name { ... }`) and settings (`key = value`) with the
/// character span of each, so a change replaces only the stanza of the LV it touches and every
/// other byte stays lvm's own. Values are numbers, "strings" (with lvm's backslash escapes) or
/// [lists] of those.
/// </summary>
public sealed class MetadataText
{
    private MetadataText(string text, Section root)
    {
        Text = text;
        Root = root;
    }

    public string Text { get; }

    /// <summary>The file's top level; the VG is its one section.</summary>
    public Section Root { get; }

    /// <exception cref="FormatException">The text is not lvm's config syntax.</exception>
    public static MetadataText Parse(string text)
    {
        var parser = new Parser(text);
        var root = parser.ParseBody(string.Empty, 0, topLevel: true);
        return new MetadataText(text, root);
    }

    /// <summary>
    /// This text with one number setting given a value of the same width: every other span stays where
    /// it was, so the tree is reused instead of re-parsed.
    /// </summary>
    /// <exception cref="ArgumentException">The new value is written in a different number of characters.</exception>
    public MetadataText WithNumber(Setting setting, long value)
    {
        var old = ((long)setting.Value).ToString(CultureInfo.InvariantCulture);
        var now = value.ToString(CultureInfo.InvariantCulture);
        if (now.Length != old.Length || !Text.AsSpan(setting.Start, setting.End - setting.Start).EndsWith(old, StringComparison.Ordinal))
        {
            throw new ArgumentException($"{setting.Name} = {value} does not fit the span of {setting.Name} = {old}.", nameof(value));
        }

        var text = string.Concat(Text.AsSpan(0, setting.End - old.Length), now, Text.AsSpan(setting.End));
        return new MetadataText(text, Replace(Root, setting, setting with { Value = value }));
    }

    private static Section Replace(Section section, Node old, Node now) =>
        section with
        {
            Items = section.Items.Select(item => ReferenceEquals(item, old) ? now
                : item is Section child && child.Start <= old.Start && old.End <= child.End ? Replace(child, old, now)
                : item).ToArray(),
        };

    /// <summary>A quoted lvm string (escapes \ and ").</summary>
    public static string Quote(string value) =>
        "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";

    public abstract record Node(string Name, int Start, int End);

    /// <summary>`name { ... }`; Start is the name's first char, End one past the closing brace.</summary>
    public sealed record Section(string Name, int Start, int End, IReadOnlyList<Node> Items) : Node(Name, Start, End)
    {
        // Plain loops: these run ~15 times per LV, and a batch at 8,000 LVs parses every LV (LINQ here
        // was most of the cost of reading an 8,000-LV text into a VgMetadata).
        public Section? Child(string name) => Find<Section>(name);

        public IEnumerable<Section> Children => Items.OfType<Section>();

        public Setting? Get(string key) => Find<Setting>(key);

        public string? String(string key) => Get(key)?.Value as string;

        public long? Number(string key) => Get(key)?.Value as long?;

        public IReadOnlyList<object> List(string key) => Get(key)?.Value as IReadOnlyList<object> ?? [];

        private T? Find<T>(string name)
            where T : Node
        {
            for (var i = 0; i < Items.Count; i++)
            {
                if (Items[i] is T item && string.Equals(item.Name, name, StringComparison.Ordinal))
                {
                    return item;
                }
            }

            return null;
        }
    }

    /// <summary>`key = value`; End is one past the value.</summary>
    public sealed record Setting(string Name, int Start, int End, object Value) : Node(Name, Start, End);

    private sealed class Parser(string text)
    {
        private int _at;

        public Section ParseBody(string name, int start, bool topLevel)
        {
            var items = new List<Node>();
            while (true)
            {
                SkipBlank();
                if (_at >= text.Length)
                {
                    return topLevel ? new Section(name, start, _at, items) : throw Error("unterminated section " + name);
                }

                if (text[_at] == '}')
                {
                    if (topLevel)
                    {
                        throw Error("unexpected '}'");
                    }

                    _at++;
                    return new Section(name, start, _at, items);
                }

                var itemStart = _at;
                var key = Word();
                SkipBlank();
                if (_at < text.Length && text[_at] == '{')
                {
                    _at++;
                    items.Add(ParseBody(key, itemStart, topLevel: false));
                }
                else if (_at < text.Length && text[_at] == '=')
                {
                    _at++;
                    SkipBlank();
                    var value = Value();
                    items.Add(new Setting(key, itemStart, _at, value));
                }
                else
                {
                    throw Error($"expected '=' or '{{' after '{key}'");
                }
            }
        }

        private object Value()
        {
            if (_at >= text.Length)
            {
                throw Error("missing value");
            }

            if (text[_at] == '[')
            {
                _at++;
                var list = new List<object>();
                while (true)
                {
                    SkipBlank();
                    if (_at < text.Length && text[_at] == ']')
                    {
                        _at++;
                        return list;
                    }

                    list.Add(Scalar());
                    SkipBlank();
                    if (_at < text.Length && text[_at] == ',')
                    {
                        _at++;
                    }
                    else if (_at >= text.Length || text[_at] != ']')
                    {
                        throw Error("expected ',' or ']' in a list");
                    }
                }
            }

            return Scalar();
        }

        private object Scalar()
        {
            if (_at < text.Length && text[_at] == '"')
            {
                _at++;

                // Most strings have no escape: one slice. 8,000 LVs are ~50,000 strings per parse, and
                // the writer parses every text it restores (MetadataInvariants).
                var close = text.AsSpan(_at).IndexOfAny('"', '\\');
                if (close >= 0 && text[_at + close] == '"')
                {
                    var plain = text.Substring(_at, close);
                    _at += close + 1;
                    return plain;
                }

                var value = new StringBuilder();
                while (true)
                {
                    if (_at >= text.Length)
                    {
                        throw Error("unterminated string");
                    }

                    var c = text[_at++];
                    if (c == '"')
                    {
                        return value.ToString();
                    }

                    if (c == '\\' && _at < text.Length)
                    {
                        c = text[_at++];
                    }

                    value.Append(c);
                }
            }

            var word = Word();
            return long.TryParse(word, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var number)
                ? number
                : throw Error($"'{word}' is neither a number nor a string");
        }

        private string Word()
        {
            var start = _at;
            while (_at < text.Length && (char.IsAsciiLetterOrDigit(text[_at]) || text[_at] is '_' or '.' or '+' or '-'))
            {
                _at++;
            }

            return _at > start ? text[start.._at] : throw Error("expected a name");
        }

        private void SkipBlank()
        {
            while (_at < text.Length)
            {
                if (char.IsWhiteSpace(text[_at]))
                {
                    _at++;
                }
                else if (text[_at] == '#')
                {
                    while (_at < text.Length && text[_at] != '\n')
                    {
                        _at++;
                    }
                }
                else
                {
                    return;
                }
            }
        }

        private FormatException Error(string what)
        {
            var line = 1 + text.AsSpan(0, Math.Min(_at, text.Length)).Count('\n');
            return new FormatException($"lvm metadata text, line {line}: {what}.");
        }
    }
}
