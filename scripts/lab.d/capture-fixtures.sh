# Runs inside a lab guest (sh): prints a base64 tar.gz of what the agent reads, laid out like the
# fixture trees under tests/SharedLvm.Tests/Fixtures/sysfs: file contents copied, and directory
# listings the agent only enumerates (holders/, slaves/, /dev/mapper) recorded as empty files.
set -eu
out=$(mktemp -d)
copy() { if [ -r "/$1" ]; then mkdir -p "$out/$(dirname "$1")"; cat "/$1" > "$out/$1" 2>/dev/null || true; fi; }
entries() { if [ -d "/$1" ]; then mkdir -p "$out/$1"; for e in $(ls "/$1"); do [ -e "$out/$1/$e" ] || : > "$out/$1/$e"; done; fi; }
for h in $(ls /sys/class/scsi_host); do
  copy "sys/class/scsi_host/$h/proc_name"; : > "$out/sys/class/scsi_host/$h/scan"
done
for h in $(ls /sys/class/fc_host 2>/dev/null); do
  for f in port_name node_name port_state speed; do copy "sys/class/fc_host/$h/$f"; done
done
for d in $(ls /sys/class/scsi_device); do
  for b in $(ls "/sys/class/scsi_device/$d/device/block" 2>/dev/null); do
    copy "sys/class/scsi_device/$d/device/block/$b/dev"
  done
done
for b in $(ls /sys/block); do
  case "$b" in sd*|dm-*) ;; *) continue ;; esac
  copy "sys/block/$b/dev"; copy "sys/block/$b/size"
  case "$b" in
    sd*) for f in model vendor wwid state; do copy "sys/block/$b/device/$f"; done; entries "sys/block/$b/holders" ;;
    dm-*) for f in name uuid suspended; do copy "sys/block/$b/dm/$f"; done; entries "sys/block/$b/slaves" ;;
  esac
  copy "run/udev/data/b$(cat "/sys/block/$b/dev")"
done
entries "dev/mapper"
mkdir -p "$out/commands"
multipathd show maps json > "$out/commands/multipathd-show-maps.json" 2>/dev/null || true
# The agent's own report (SharedLvm.Os LvmCli: the same fields), read-only like the agent.
lvm fullreport --config 'global{metadata_read_only=1}' --reportformat json --units b --nosuffix \
  --configreport vg -o vg_name,vg_uuid,vg_size,vg_free,vg_extent_size,vg_free_count,vg_seqno,lv_count,vg_mda_size,vg_mda_free,vg_tags,vg_autoactivation \
  --configreport pv -o pv_name,pv_uuid,vg_name,pv_size,dev_size \
  --configreport lv -o vg_name,lv_name,lv_uuid,lv_size,lv_tags,lv_attr,origin,lv_time,lv_kernel_major,lv_kernel_minor,lv_autoactivation \
  --configreport pvseg -o pvseg_start --configreport seg -o seg_start > "$out/commands/fullreport.json" 2>/dev/null || true
dmsetup table > "$out/commands/dmsetup-table.txt" 2>/dev/null || true
dmsetup info -c --noheadings --separator , -o name,open > "$out/commands/dmsetup-info.txt" 2>/dev/null || true
tar -C "$out" -czf - . | base64 -w0
rm -rf "$out"
