using System.Globalization;

namespace SharedLvm.Agent.Uplink;

/// <summary>
/// The highest controller epoch this agent has seen and the controller that held it, kept on disk:
/// after an agent restart a deposed controller (restored from an old backup, a split brain) must
/// still be refused. An epoch is one term of one controller, so the same number from another
/// controller id is refused too: two controllers that both believe they hold epoch N (a lost state
/// directory, a copied one) must not both be obeyed.
/// </summary>
public sealed class EpochStore
{
    private readonly string _path;
    private readonly object _gate = new();
    private ulong _highest;
    private string _holder;

    public EpochStore(string stateDirectory)
    {
        Directory.CreateDirectory(stateDirectory);
        _path = Path.Combine(stateDirectory, "highest-epoch");
        (_highest, _holder) = Parse(File.Exists(_path) ? File.ReadAllText(_path) : string.Empty);
    }

    public ulong Highest
    {
        get
        {
            lock (_gate)
            {
                return _highest;
            }
        }
    }

    /// <summary>The controller id that holds <see cref="Highest"/> ("" when none or unknown).</summary>
    public string Holder
    {
        get
        {
            lock (_gate)
            {
                return _holder;
            }
        }
    }

    /// <summary>
    /// Records an epoch; false (and nothing recorded) when it is older than one already seen, or the
    /// same epoch from a different controller id. An empty id (an older file, an older controller)
    /// is adopted by the first id that comes with the same epoch.
    /// </summary>
    public bool Observe(ulong epoch, string controllerId)
    {
        lock (_gate)
        {
            if (epoch < _highest)
            {
                return false;
            }

            if (epoch == _highest)
            {
                if (_holder.Length > 0 && controllerId.Length > 0 && !string.Equals(_holder, controllerId, StringComparison.Ordinal))
                {
                    return false;
                }

                if (_holder.Length > 0 || controllerId.Length == 0)
                {
                    return true;
                }
            }

            var temporary = _path + ".tmp";
            File.WriteAllText(temporary, string.Create(CultureInfo.InvariantCulture, $"{epoch} {controllerId}\n"));
            File.Move(temporary, _path, overwrite: true);
            _highest = epoch;
            _holder = controllerId;
            return true;
        }
    }

    /// <summary>"EPOCH CONTROLLER_ID"; an older file holds the number alone.</summary>
    private static (ulong Epoch, string Holder) Parse(string text)
    {
        var parts = text.Split(' ', 2, StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        return parts.Length > 0 && ulong.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var value)
            ? (value, parts.Length > 1 ? parts[1] : string.Empty)
            : (0, string.Empty);
    }
}
