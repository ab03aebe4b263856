/** The commands' `--config` option: repeatable, each file merged over the ones before (loadConfig). */
import { Option } from 'commander';

export function configOption(what = 'config file (YAML or JSON)'): Option {
  return new Option('-c, --config <file>', `${what}; repeat to layer files, later ones override earlier`).argParser(
    (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
  );
}
