/* OpenMP functions that also compile without OpenMP: a build with
 * PYCONVNET_NO_OPENMP=1 sees one thread everywhere. */
#ifndef PCN_OPENMP_H
#define PCN_OPENMP_H

#ifdef _OPENMP
#include <omp.h>
#define PYCONVNET_OPENMP_ENABLED 1
#else
#define PYCONVNET_OPENMP_ENABLED 0
#define omp_get_max_threads() 1
#define omp_get_thread_num() 0
#define omp_get_num_threads() 1
#endif

#endif
