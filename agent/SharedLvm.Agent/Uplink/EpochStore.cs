using System.Globalization;

namespace SharedLvm.Agent.Uplink;

/// <summary>
/// The highest controller epoch this agent has seen, kept on disk: after an agent restart a deposed
/// controller (restored from an old backup, a split brain) must still be refused.
/// </summary>
public sealed class EpochStore
{
    private readonly string _path;
    private readonly object _gate = new();
    private ulong _highest;

    public EpochStore(string stateDirectory)
    {
        Directory.CreateDirectory(stateDirectory);
        _path = Path.Combine(stateDirectory, "highest-epoch");
        _highest = File.Exists(_path) && ulong.TryParse(File.ReadAllText(_path).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : 0;
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

    /// <summary>Records an epoch; false (and nothing recorded) when it is older than one already seen.</summary>
    public bool Observe(ulong epoch)
    {
        lock (_gate)
        {
            if (epoch < _highest)
            {
                return false;
            }

            if (epoch > _highest)
            {
                var temporary = _path + ".tmp";
                File.WriteAllText(temporary, epoch.ToString(CultureInfo.InvariantCulture));
                File.Move(temporary, _path, overwrite: true);
                _highest = epoch;
            }

            return true;
        }
    }
}
