#!/usr/bin/env python3
"""A Fashion-MNIST dev split for tuning calibrated pruning without touching the test set.

Takes N training images (default 20,000) that are not among the fixture's 256 calibration images, normalised as
the fixtures are ((x/255 - 0.2860)/0.3530), and writes them as test_x.npy/test_y.npy beside copies of the fixture
models and calib_x.npy, so that the accuracy bench scores them in place of the test set:

  apt-get install dataset-fashion-mnist      # Debian's Fashion-MNIST (the fixtures' source)
  tools/data/fm_dev.py OUT [N]
  dotnet tools/bench/accuracy/bin/Release/net10.0/OnnxSlim.Accuracy.Bench.dll --fixtures OUT --test-images N ...

The model was trained on these images, so its accuracy there is higher than on the test set (95.09 % against
93.78 %); what the split is for is comparing variants of the method. Plain Python, no numpy.
"""
import array, gzip, os, random, shutil, struct, sys

SOURCE = '/usr/share/datasets/fashion-mnist/'
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), '../../../shared/fixtures/fashion-mnist')
MEAN, STD = 0.2860, 0.3530

def read_npy_floats(path):
    data = open(path, 'rb').read()
    header = struct.unpack('<H', data[8:10])[0]
    values = array.array('f')
    values.frombytes(data[10 + header:])
    return values

def write_npy(path, descr, shape, payload):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, str(tuple(shape)))
    header += ' ' * (63 - (10 + len(header)) % 64) + '\n'
    with open(path, 'wb') as f:
        f.write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(header)) + header.encode() + payload)

def main():
    out = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    images = gzip.open(SOURCE + 'train-images-idx3-ubyte.gz').read()[16:]
    labels = gzip.open(SOURCE + 'train-labels-idx1-ubyte.gz').read()[8:]
    image = lambda i: images[i * 784:(i + 1) * 784]
    by_bytes = {}
    for i in range(len(labels)):
        by_bytes.setdefault(image(i), []).append(i)
    calib = read_npy_floats(os.path.join(FIXTURES, 'calib_x.npy'))
    excluded = set()
    for k in range(len(calib) // 784):
        pixels = bytes(max(0, min(255, round((calib[k * 784 + j] * STD + MEAN) * 255))) for j in range(784))
        excluded.update(by_bytes.get(pixels, []))
    if len(excluded) < len(calib) // 784:
        sys.exit(f'only {len(excluded)} of the {len(calib) // 784} calibration images found in the training set')
    chosen = [i for i in range(len(labels)) if i not in excluded]
    random.Random(21).shuffle(chosen)
    chosen = chosen[:count]
    os.makedirs(out, exist_ok=True)
    x = array.array('f', [(b / 255 - MEAN) / STD for i in chosen for b in image(i)])
    write_npy(os.path.join(out, 'test_x.npy'), '<f4', (len(chosen), 1, 28, 28), x.tobytes())
    write_npy(os.path.join(out, 'test_y.npy'), '<i8', (len(chosen),), array.array('q', [labels[i] for i in chosen]).tobytes())
    for name in ('fm_resnet_fused.onnx', 'fm_resnet_bn.onnx', 'calib_x.npy'):
        shutil.copy(os.path.join(FIXTURES, name), out)
    print(f'{out}: {len(chosen)} training images, none of the {len(excluded)} calibration images')

if __name__ == '__main__':
    main()
